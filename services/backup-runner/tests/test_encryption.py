"""Encryption at rest: the frame format round-trips, and refuses a wrong key, a cut-off
object and reordered frames; an encrypted backup verifies without the key and restores
only with it."""

from __future__ import annotations

import base64
import io
import os
import uuid

import nats
import pytest
from pydantic import SecretStr

from backup_runner.encryption import DecryptionFailed, EncryptingReader, decrypt_chunks, key_id
from backup_runner.objects import MinioObjectStore
from backup_runner.runner import BackupRequest, BackupRunner
from backup_runner.settings import BackupRunnerSettings
from fleet_runtime.errors import ConfigError
from fleet_runtime.settings import load_settings
from fleet_testing.servers import NatsServer

from .test_restore import digests, fleet_backup

KEY = bytes(range(32))
OTHER = bytes(range(1, 33))


def sealed(plain: bytes, key: bytes = KEY) -> bytes:
    return EncryptingReader(io.BytesIO(plain), key).read()


def opened(data: bytes, key: bytes = KEY) -> bytes:
    chunks = [data[i : i + 7000] for i in range(0, len(data), 7000)]
    return b"".join(decrypt_chunks(chunks, key, "obj"))


@pytest.mark.parametrize("size", [0, 1, 1024 * 1024, 3 * 1024 * 1024 + 17])
def test_frames_round_trip(size: int) -> None:
    plain = os.urandom(size)
    data = sealed(plain)
    if size >= 16:  # a shorter plaintext can occur in any random ciphertext by chance
        assert plain[:64] not in data
    assert opened(data) == plain


def test_a_wrong_key_a_cut_off_object_and_swapped_frames_are_refused() -> None:
    plain = os.urandom(2 * 1024 * 1024 + 5)
    data = sealed(plain)
    with pytest.raises(DecryptionFailed, match="wrong key, or the object was altered"):
        opened(data, OTHER)
    # Cut after the first frame: that frame was not sealed as the last one.
    first_len = int.from_bytes(data[14:18], "big")
    with pytest.raises(DecryptionFailed):
        opened(data[: 18 + first_len])
    # Frames 0 and 1 swapped.
    header, rest = data[:14], data[14:]
    frame0, rest = rest[: 4 + first_len], rest[4 + first_len :]
    second_len = int.from_bytes(rest[:4], "big")
    frame1, rest = rest[: 4 + second_len], rest[4 + second_len :]
    with pytest.raises(DecryptionFailed):
        opened(header + frame1 + frame0 + rest)


def test_a_key_that_is_not_32_bytes_of_base64_is_a_settings_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BACKUP_RUNNER_ENCRYPTION_KEY", base64.b64encode(b"short").decode())
    with pytest.raises(ConfigError) as caught:
        load_settings(BackupRunnerSettings)
    assert "BACKUP_RUNNER_ENCRYPTION_KEY" in str(caught.value)
    assert "AES-256 needs 32" in str(caught.value)
    assert "hidden: a secret" in str(caught.value)


async def test_an_encrypted_backup_verifies_without_the_key_and_restores_only_with_it(
    settings: BackupRunnerSettings,
    store: MinioObjectStore,
    nats_server: NatsServer,
    worker_database: str,
    empty_database: str,
) -> None:
    encrypted = settings.model_copy(
        update={"encryption_key": SecretStr(base64.b64encode(KEY).decode())}
    )
    nc = await nats.connect(nats_server.url)
    try:
        wanted = BackupRequest(f"enc-{uuid.uuid4().hex[:8]}", "postgres", None, "test")
        done = await BackupRunner(encrypted, store, nc.jetstream()).run(wanted)
    finally:
        await nc.close()
    assert done.manifest.encryption == "aes-256-gcm-frames-v1"
    assert done.manifest.key_id == key_id(KEY)
    stored = b"".join(store.get_chunks(done.manifest.objects[0].key))
    assert b"PGDMP" not in stored  # pg_dump's custom-format magic: not in the clear

    plain_settings = settings.model_copy(update={"encryption_key": None})
    verified = await fleet_backup(plain_settings, "verify", wanted.backup_id)
    assert verified.returncode == 0, verified.stderr

    no_key = await fleet_backup(
        plain_settings, "restore", wanted.backup_id, "--into", empty_database
    )
    assert no_key.returncode == 2
    assert f"is encrypted (key id {key_id(KEY)})" in no_key.stderr
    wrong = settings.model_copy(
        update={"encryption_key": SecretStr(base64.b64encode(OTHER).decode())}
    )
    refused = await fleet_backup(wrong, "restore", wanted.backup_id, "--into", empty_database)
    assert refused.returncode == 2
    assert "error: wrong encryption key" in refused.stderr
    assert base64.b64encode(OTHER).decode() not in refused.stderr

    loaded = await fleet_backup(encrypted, "restore", wanted.backup_id, "--into", empty_database)
    assert loaded.returncode == 0, loaded.stderr
    assert await digests(empty_database) == await digests(worker_database)

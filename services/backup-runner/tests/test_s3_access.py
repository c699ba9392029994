"""backup-runner's S3 identity on a real SeaweedFS: its own bucket prefix, nothing else."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from minio import Minio
from minio.error import S3Error

from backup_runner.s3access import iam_policy, seaweed_identity
from fleet_testing.servers.s3_server import find_weed
from fleet_testing.servers.seaweed_server import SeaweedS3Server

ACCESS, SECRET = "backup-runner-key", "backup-runner-secret-0123456789"


@pytest.fixture
def seaweed(tmp_path: Path) -> Iterator[SeaweedS3Server]:
    try:
        find_weed()
    except Exception as exc:
        pytest.skip(f"SeaweedFS (weed) is needed to enforce per-bucket identities: {exc}")
    identity = seaweed_identity("backup-runner", ACCESS, SECRET, "fleet-backups", "prod")
    server = SeaweedS3Server(tmp_path / "s3", identities=[identity])
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _client(server: SeaweedS3Server, access: str, secret: str) -> Minio:
    return Minio(
        server.endpoint, access_key=access, secret_key=secret, secure=False, region=server.region
    )


def _put(client: Minio, bucket: str, key: str) -> None:
    client.put_object(bucket, key, io.BytesIO(b"backup"), 6)


def test_backup_identity_writes_only_under_its_prefix(seaweed: SeaweedS3Server) -> None:
    admin = _client(seaweed, seaweed.access_key, seaweed.secret_key)
    for bucket in ("fleet-backups", "other-bucket"):
        admin.make_bucket(bucket)
    runner = _client(seaweed, ACCESS, SECRET)
    _put(runner, "fleet-backups", "prod/manifests/b1.json")
    got = runner.get_object("fleet-backups", "prod/manifests/b1.json")
    try:
        assert got.read() == b"backup"
    finally:
        got.close()
        got.release_conn()
    for bucket, key in (("fleet-backups", "staging/b1.json"), ("other-bucket", "prod/b1.json")):
        with pytest.raises(S3Error) as refused:
            _put(runner, bucket, key)
        assert refused.value.code == "AccessDenied", refused.value
    admin.put_object("other-bucket", "secret.txt", io.BytesIO(b"x"), 1)
    with pytest.raises(S3Error) as refused_read:
        runner.get_object("other-bucket", "secret.txt")
    assert refused_read.value.code == "AccessDenied"
    assert sorted(o.object_name for o in admin.list_objects("fleet-backups", recursive=True)) == [
        "prod/manifests/b1.json"
    ]


def test_iam_policy_scopes_objects_and_listing_to_the_prefix() -> None:
    policy = iam_policy("fleet-backups", "prod")
    objects, listing = policy["Statement"]
    assert objects["Resource"] == ["arn:aws:s3:::fleet-backups/prod/*"]
    assert "s3:DeleteObject" in objects["Action"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["prod/*"]}}
    assert iam_policy("fleet-backups")["Statement"][0]["Resource"] == [
        "arn:aws:s3:::fleet-backups/*"
    ]

"""NATS user nkeys: made, kept and read as seed files readable by their owner only.

A seed (``SU…``) is the secret a client signs the server's nonce with; the server only
holds the public key (``U…``). Seeds are written with mode 0600 and never printed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import nkeys

from fleet_runtime.errors import ConfigError

SEED_SUFFIX = ".nk"


def inbox_prefix(user: str) -> str:
    """The reply inbox prefix of ``user``; its permissions allow only this one."""
    return f"_INBOX.{user}"


def seed_file(directory: Path, user: str) -> Path:
    """Where the seed of ``user`` is kept in a credentials directory."""
    return directory / f"{user}{SEED_SUFFIX}"


def new_seed() -> bytes:
    """A fresh user seed (``SU…``)."""
    seed: bytes = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    return seed


def public_key(seed: bytes) -> str:
    """The public user key (``U…``) of ``seed``."""
    pair = nkeys.from_seed(bytearray(seed))
    try:
        key: bytes = pair.public_key
        return key.decode()
    finally:
        pair.wipe()


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable and writable by the owner only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file keeps its old mode through O_CREAT
        os.write(fd, data)
    finally:
        os.close(fd)


def read_seed(path: Path) -> bytes:
    """The seed in ``path``; a missing, unreadable or invalid file is a ``ConfigError``."""
    try:
        seed = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the NATS seed file {path}: {exc.strerror or exc}",
            fix="run `fleet security generate` or point the setting at the right file",
        ) from None
    try:
        public_key(seed)
    except (nkeys.NkeysError, ValueError):
        raise ConfigError(
            f"{path} does not hold a NATS user seed (content hidden)",
            fix=f"regenerate it with `fleet security generate --rotate {path.stem}`",
        ) from None
    return seed


def ensure_seeds(
    directory: Path, users: Iterable[str], *, rotate: Iterable[str] = ()
) -> dict[str, str]:
    """Each user's public key, making a seed file for a user that has none (or is rotated).

    Existing seeds are kept, so generating again after a streams.yaml change only
    changes permissions, never the keys clients hold.
    """
    rotated = set(rotate)
    keys: dict[str, str] = {}
    for user in users:
        path = seed_file(directory, user)
        if path.exists() and user not in rotated:
            seed = read_seed(path)
            os.chmod(path, 0o600)
        else:
            seed = new_seed()
            write_private(path, seed + b"\n")
        keys[user] = public_key(seed)
    return keys

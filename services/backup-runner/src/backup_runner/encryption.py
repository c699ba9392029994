"""Optional encryption at rest: AES-256-GCM in frames, so objects stream in and out.

Format (``aes-256-gcm-frames-v1``): ``TFGCM1`` + an 8-byte random object nonce, then
frames of ``4-byte big-endian length + ciphertext with its 16-byte tag``. Frame ``i``
uses the nonce ``object nonce + i`` (4 bytes) and the associated data ``i`` and whether
it is the last frame, so frames cannot be reordered, dropped or cut off unnoticed. The
key (32 bytes, base64 in the settings) is never logged; a manifest records only its id
(the first 16 hex digits of its sha256), so a wrong key is named as such.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import struct
from collections.abc import Iterable, Iterator
from datetime import datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from backup_runner.objects import ObjectStore, Readable, StoredObject

SCHEME = "aes-256-gcm-frames-v1"
_MAGIC = b"TFGCM1"
_FRAME = 1024 * 1024
_TAG = 16


class DecryptionFailed(Exception):
    """An object does not decrypt with the key: the wrong key, or damaged bytes."""


def parse_key(encoded: str) -> bytes:
    """The 32-byte key from its base64 form; ValueError with the reason otherwise."""
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64 (e.g. `openssl rand -base64 32`)") from None
    if len(key) != 32:
        raise ValueError(f"decodes to {len(key)} bytes; AES-256 needs 32")
    return key


def key_id(key: bytes) -> str:
    """A name for the key that does not reveal it."""
    return hashlib.sha256(key).hexdigest()[:16]


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + struct.pack(">I", index)


def _aad(index: int, last: bool) -> bytes:
    return struct.pack(">I?", index, last)


class EncryptingReader(io.RawIOBase):
    """Reads as the encrypted form of ``source`` (one frame of plaintext held at a time)."""

    def __init__(self, source: Readable, key: bytes) -> None:
        self._source = source
        self._aes = AESGCM(key)
        self._prefix = os.urandom(8)
        self._pending = _MAGIC + self._prefix
        self._index = 0
        self._next = self._read_plain()
        self._done = False

    def _read_plain(self) -> bytes:
        out = b""
        while len(out) < _FRAME:
            chunk = self._source.read(_FRAME - len(out))
            if not chunk:
                break
            out += chunk
        return out

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or len(self._pending) < size):
            plain, self._next = self._next, self._read_plain()
            last = not self._next
            sealed = self._aes.encrypt(
                _nonce(self._prefix, self._index), plain, _aad(self._index, last)
            )
            self._pending += struct.pack(">I", len(sealed)) + sealed
            self._index += 1
            self._done = last
        if size < 0:
            out, self._pending = self._pending, b""
        else:
            out, self._pending = self._pending[:size], self._pending[size:]
        return out

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def decrypt_chunks(chunks: Iterable[bytes], key: bytes, what: str) -> Iterator[bytes]:
    """The plaintext of an encrypted object read as ``chunks``; ``DecryptionFailed`` naming
    ``what`` on a wrong key, damage, or a cut-off object."""
    aes = AESGCM(key)
    buffer = b""
    stream = iter(chunks)

    def need(n: int) -> bool:
        nonlocal buffer
        while len(buffer) < n:
            chunk = next(stream, None)
            if chunk is None:
                return False
            buffer += chunk
        return True

    if not need(len(_MAGIC) + 8) or not buffer.startswith(_MAGIC):
        raise DecryptionFailed(f"{what}: not an encrypted backup object")
    prefix = buffer[len(_MAGIC) : len(_MAGIC) + 8]
    buffer = buffer[len(_MAGIC) + 8 :]
    index = 0
    while True:
        if not need(4):
            raise DecryptionFailed(f"{what}: cut off before its last frame")
        (length,) = struct.unpack(">I", buffer[:4])
        if length < _TAG or not need(4 + length):
            raise DecryptionFailed(f"{what}: frame {index} is damaged or cut off")
        sealed, buffer = buffer[4 : 4 + length], buffer[4 + length :]
        last = not need(1)
        try:
            yield aes.decrypt(_nonce(prefix, index), sealed, _aad(index, last))
        except InvalidTag:
            raise DecryptionFailed(
                f"{what}: does not decrypt (wrong key, or the object was altered)"
            ) from None
        if last:
            return
        index += 1


class EncryptedObjectStore:
    """An ``ObjectStore`` that encrypts what it writes and decrypts what it reads.

    Sizes and digests returned by writes are those of the stored (encrypted) bytes, so
    `fleet backup verify` checks a backup without the key.
    """

    def __init__(self, inner: ObjectStore, key: bytes) -> None:
        self._inner = inner
        self._key = key

    def ensure_bucket(self) -> None:
        self._inner.ensure_bucket()

    def put_stream(self, key: str, source: Readable) -> StoredObject:
        return self._inner.put_stream(key, EncryptingReader(source, self._key))

    def put_bytes(self, key: str, data: bytes) -> StoredObject:
        return self._inner.put_stream(key, EncryptingReader(io.BytesIO(data), self._key))

    def get_chunks(self, key: str) -> Iterator[bytes]:
        return decrypt_chunks(self._inner.get_chunks(key), self._key, key)

    def keys(self, prefix: str) -> list[str]:
        return self._inner.keys(prefix)

    def modified(self, prefix: str) -> dict[str, datetime]:
        return self._inner.modified(prefix)

    def delete(self, key: str) -> None:
        self._inner.delete(key)

    def abort_uploads(self, prefix: str) -> list[str]:
        return self._inner.abort_uploads(prefix)

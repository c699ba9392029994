"""The object store port and its S3 adapter (the minio client), with digests on the way in.

Every object is written by streaming: the adapter reads a file-like source one part at a
time (multipart upload, ``part_size`` bytes in memory at most) while ``HashingReader``
counts the bytes and computes the sha256 that goes into the manifest. The minio client
is synchronous; the runner calls it from a worker thread.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Protocol, cast

import urllib3
from minio import Minio
from minio.error import S3Error

from backup_runner.readahead import ReadAhead
from fleet_runtime.errors import StoreUnavailable

MIN_PART_SIZE = 5 * 1024 * 1024
READ_CHUNK = 1024 * 1024

# Codes that mean the gateway refused us for a reason a retry does not change.
_REFUSED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "NoSuchBucket"}


class Readable(Protocol):
    """Anything with ``read(size)`` (a pipe, a file, ``ChunkReader``)."""

    def read(self, size: int = -1, /) -> bytes: ...


class ObjectMissing(Exception):
    """The key is not in the bucket."""


@dataclass(frozen=True)
class StoredObject:
    """One object of a backup as the manifest lists it."""

    key: str
    size: int
    sha256: str


class HashingReader(io.RawIOBase):
    """A read-only stream over ``source`` that hashes and counts what is read through it."""

    def __init__(self, source: Readable) -> None:
        self._source = source
        self._digest = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self._digest.update(data)
        self.size += len(data)
        return data

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    @property
    def sha256(self) -> str:
        """The hex digest of everything read so far."""
        return self._digest.hexdigest()


class ChunkReader(io.RawIOBase):
    """A file-like view of an iterator of byte chunks (a compressor's output)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return self._pending + b"".join(self._chunks)
        while len(self._pending) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._pending += chunk
        out, self._pending = self._pending[:size], self._pending[size:]
        return out

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class ObjectStore(Protocol):
    """Where backups and archived segments are kept."""

    def ensure_bucket(self) -> None: ...

    def put_stream(self, key: str, source: Readable) -> StoredObject: ...

    def put_bytes(self, key: str, data: bytes) -> StoredObject: ...

    def get_chunks(self, key: str) -> Iterator[bytes]: ...

    def keys(self, prefix: str) -> list[str]: ...

    def modified(self, prefix: str) -> dict[str, datetime]: ...

    def delete(self, key: str) -> None: ...

    def abort_uploads(self, prefix: str) -> list[str]: ...


def _translate(exc: Exception, what: str) -> Exception:
    if isinstance(exc, S3Error):
        if exc.code == "NoSuchKey":
            return ObjectMissing(f"{what}: no such object")
        if exc.code in _REFUSED:
            return StoreUnavailable(f"S3 refused {what}: {exc.code} ({exc.message})")
        return StoreUnavailable(f"S3 error on {what}: {exc.code}")
    return StoreUnavailable(f"S3 unreachable on {what}: {_why(exc)}")


def _why(exc: Exception) -> str:
    """The cause of a connection failure in a few words (urllib3 nests it in its retries)."""
    reason = getattr(exc, "reason", None) or exc
    text = str(reason).lower()
    for marker, said in (
        ("refused", "connection refused"),
        ("timed out", "timed out"),
        ("name or service not known", "unknown host"),
        ("reset", "connection reset"),
    ):
        if marker in text:
            return said
    return f"{type(reason).__name__}: {reason}"


class MinioObjectStore:
    """``ObjectStore`` on an S3 endpoint through the minio client."""

    def __init__(
        self,
        *,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        region: str,
        secure: bool = False,
        part_size: int = 16 * 1024 * 1024,
        timeout_s: float = 10.0,
    ) -> None:
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s * 3),
            retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=[502, 503, 504]),
        )
        self._client = Minio(
            endpoint.removeprefix("http://").removeprefix("https://"),
            access_key=access_key,
            secret_key=secret_key,
            region=region,
            secure=secure,
            http_client=http,
        )
        self.bucket = bucket
        self._part_size = max(part_size, MIN_PART_SIZE)

    def ensure_bucket(self) -> None:
        """Create the bucket if it is not there."""
        try:
            if not self._client.bucket_exists(self.bucket):
                self._client.make_bucket(self.bucket)
        except Exception as exc:
            raise _translate(exc, f"bucket {self.bucket}") from exc

    def put_stream(self, key: str, source: Readable) -> StoredObject:
        """Upload ``source`` to its end as ``key`` (multipart, one part in memory at a time)."""
        ahead = ReadAhead(source, self._part_size)
        reader = HashingReader(ahead)
        try:
            # One part at a time, the next one read meanwhile (at most a part ahead): the
            # client's own parallel uploads queue every part read ahead of a slower S3
            # without a bound, so memory would grow with the dump.
            self._client.put_object(
                self.bucket,
                key,
                cast("BinaryIO", reader),
                length=-1,
                part_size=self._part_size,
                num_parallel_uploads=1,
            )
        except Exception as exc:
            raise _translate(exc, f"upload of {key}") from exc
        finally:
            ahead.close()
        return StoredObject(key, reader.size, reader.sha256)

    def put_bytes(self, key: str, data: bytes) -> StoredObject:
        """Upload a small object in one request."""
        try:
            self._client.put_object(self.bucket, key, io.BytesIO(data), length=len(data))
        except Exception as exc:
            raise _translate(exc, f"upload of {key}") from exc
        return StoredObject(key, len(data), hashlib.sha256(data).hexdigest())

    def get_chunks(self, key: str) -> Iterator[bytes]:
        """The object's bytes, a chunk at a time."""
        try:
            response = self._client.get_object(self.bucket, key)
        except Exception as exc:
            raise _translate(exc, f"download of {key}") from exc
        try:
            yield from response.stream(READ_CHUNK)
        finally:
            response.close()
            response.release_conn()

    def keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix``, sorted."""
        try:
            found = self._client.list_objects(self.bucket, prefix=prefix, recursive=True)
            return sorted(o.object_name for o in found if o.object_name)
        except Exception as exc:
            raise _translate(exc, f"listing of {prefix}") from exc

    def modified(self, prefix: str) -> dict[str, datetime]:
        """Every key under ``prefix`` with the time it was last written (S3 Last-Modified)."""
        try:
            found = self._client.list_objects(self.bucket, prefix=prefix, recursive=True)
            return {
                o.object_name: o.last_modified
                for o in found
                if o.object_name and o.last_modified is not None
            }
        except Exception as exc:
            raise _translate(exc, f"listing of {prefix}") from exc

    def delete(self, key: str) -> None:
        """Remove ``key`` (no error when it is absent)."""
        try:
            self._client.remove_object(self.bucket, key)
        except Exception as exc:
            raise _translate(exc, f"delete of {key}") from exc

    def abort_uploads(self, prefix: str) -> list[str]:
        """Abort the unfinished multipart uploads under ``prefix``; the keys they were for.

        A runner killed mid-upload leaves its parts on the server, invisible to listings
        but taking space. minio-py has no public call for this (only its own aborts on an
        exception), so its two internal S3 calls are used.
        """
        aborted: list[str] = []
        try:
            key_marker: str | None = None
            upload_marker: str | None = None
            while True:
                page = self._client._list_multipart_uploads(
                    self.bucket, prefix=prefix, key_marker=key_marker,
                    upload_id_marker=upload_marker,
                )  # fmt: skip
                for upload in page.uploads:
                    if upload.upload_id is None:
                        continue
                    self._client._abort_multipart_upload(
                        self.bucket, upload.object_name, upload.upload_id
                    )
                    aborted.append(upload.object_name)
                if not page.is_truncated:
                    return aborted
                key_marker, upload_marker = page.next_key_marker, page.next_upload_id_marker
        except Exception as exc:
            raise _translate(exc, f"clean-up of unfinished uploads under {prefix}") from exc

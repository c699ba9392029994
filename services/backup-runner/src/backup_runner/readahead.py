"""A bounded read-ahead: the source is read on a thread while the upload sends a part.

The multipart upload reads one part, sends it, then reads the next; without read-ahead
the producer (pg_dump writing into a pipe) stalls for every part sent. With it, up to
``limit`` bytes are read while a part goes up, so the memory bound stays fixed (one part
in the upload, at most ``limit`` more here) and the dump keeps running.
"""

from __future__ import annotations

import io
import queue
import threading
from typing import Protocol

_CHUNK = 1024 * 1024
_Item = bytes | BaseException | None


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class ReadAhead(io.RawIOBase):
    """A file-like reader over ``source`` that a thread keeps up to ``limit`` bytes ahead of."""

    def __init__(self, source: _Readable, limit: int, chunk: int = _CHUNK) -> None:
        self._source = source
        self._chunk = chunk
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=max(limit // chunk, 1))
        self._pending = b""
        self._ended = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fill, name="upload-read-ahead", daemon=True)
        self._thread.start()

    def _fill(self) -> None:
        try:
            while not self._stop.is_set():
                data = self._source.read(self._chunk)
                self._put(data or None)
                if not data:
                    return
        except BaseException as exc:  # handed to the reader, which raises it
            self._put(exc)

    def _put(self, item: _Item) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        buf = bytearray(self._pending)
        self._pending = b""
        while (size is None or size < 0 or len(buf) < size) and not self._ended:
            item = self._queue.get()
            if item is None:
                self._ended = True
            elif isinstance(item, BaseException):
                self._ended = True
                raise item
            else:
                buf += item
        if size is not None and 0 <= size < len(buf):
            self._pending = bytes(buf[size:])
            del buf[size:]
        return bytes(buf)

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        """Stop reading ahead (the thread ends at its next chunk or when the source ends)."""
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=1.0)
        super().close()

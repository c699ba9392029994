"""Reading a worker's /readyz over plain HTTP."""

from __future__ import annotations

import asyncio


async def http_status(port: int, path: str = "/readyz") -> int:
    """The HTTP status of ``GET path`` on the health port (0 when nothing answers)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2)
    except (OSError, TimeoutError):
        return 0
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 2)
        return int(line.split()[1])
    finally:
        writer.close()

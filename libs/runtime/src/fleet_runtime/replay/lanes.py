"""The engine's lanes: one per subscription, each with its ordered consumer's buffer."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from nats.aio.msg import Msg

from fleet_runtime.binding import Subscription, stream_seq
from fleet_runtime.staging import decode_accepted

if TYPE_CHECKING:
    from fleet_runtime.replay.engine import ReplayEngine

BUFFER_MAX = 50_000


def decoder(sub: Subscription) -> Callable[[bytes], Any]:
    """The event the live worker would handle from a message's data.

    Raises ``DecodeError`` or ``EventRejected`` for what the live worker dead-letters.
    """
    if sub.decode is not None:
        return sub.decode
    return partial(decode_accepted, accepts=sub.accepts)


class Lane:
    """One subscription's ordered consumer: its buffer, position and what is left.

    The consumer's callback (``deliver``) only appends to a buffer; the engine takes
    whole runs of it (``take``). A plain deque and one wake-up event cost less per
    message than an ``asyncio.Queue``'s put and get, and a replay handles every message
    of the stream through here.
    """

    def __init__(self, sub: Subscription, subject: str) -> None:
        self.sub = sub
        self.stream = sub.stream
        self.subject = subject
        self.decode = decoder(sub)
        self.pending = 0
        self.position = 0
        self._buffer: deque[Msg] = deque()
        self._arrived = asyncio.Event()
        self._waiting = False
        self._room = asyncio.Event()
        self._room.set()

    async def deliver(self, msg: Msg) -> None:
        """The ordered consumer's callback: buffer ``msg``.

        Awaiting room in a full buffer holds the subscription's callback, so flow control
        slows the server down instead of the buffer growing without bound.
        """
        buffer = self._buffer
        buffer.append(msg)
        if self._waiting:
            self._arrived.set()
        if len(buffer) >= BUFFER_MAX:
            self._room.clear()
            await self._room.wait()

    @property
    def busy(self) -> bool:
        """Whether the lane has messages left to apply."""
        return self.pending > 0 or bool(self._buffer)

    async def wait(self, wait_s: float) -> None:
        """Until a message is buffered (TimeoutError after ``wait_s``)."""
        if self._buffer:
            return
        self._arrived.clear()
        self._waiting = True
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for returns normally when
            # the event is set in the same loop turn as a cancel (Ctrl-C), swallowing it.
            async with asyncio.timeout(wait_s):
                await self._arrived.wait()
        finally:
            self._waiting = False

    def next_seq(self) -> int:
        """The stream sequence of the first buffered message (one must be buffered)."""
        return stream_seq(self._buffer[0].reply)

    def take(self, most: int, limit: int | None = None) -> list[Msg]:
        """Up to ``most`` buffered messages in stream order; with ``limit``, only those at
        or below that stream sequence (the rest stay buffered)."""
        buffer = self._buffer
        count = min(most, len(buffer))
        if limit is not None:
            # Sequences rise through the buffer: the first one past ``limit`` by bisection.
            low, high = 0, count
            while low < high:
                middle = (low + high) // 2
                if stream_seq(buffer[middle].reply) <= limit:
                    low = middle + 1
                else:
                    high = middle
            count = low
        popleft = buffer.popleft
        msgs = [popleft() for _ in range(count)]
        if not self._room.is_set() and len(buffer) < BUFFER_MAX:
            self._room.set()
        return msgs


class LaneCatchUp:
    """The engine's ``CatchUp``: one stream by sequence, or each stream by name."""

    def __init__(self, engine: ReplayEngine) -> None:
        self._engine = engine

    async def __call__(self, seq: int) -> int:
        lanes = self._engine._lanes
        if len(lanes) != 1:
            raise TypeError("catch_up(seq) needs a single stream: use catch_up.streams()")
        return await self._engine._catch_up(lanes[0], seq)

    async def streams(self, positions: Mapping[str, int]) -> dict[str, int]:
        reached: dict[str, int] = {}
        for lane in self._engine._lanes:
            reached[lane.stream] = await self._engine._catch_up(lane, positions.get(lane.stream, 0))
        return reached

    def before_commit(self) -> None:
        self._engine._interrupt.before_commit()

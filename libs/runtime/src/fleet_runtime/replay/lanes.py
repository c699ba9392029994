"""The engine's lanes: one per subscription, each with its ordered consumer's queue."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING

from nats.aio.msg import Msg

from fleet_runtime.binding import Subscription

if TYPE_CHECKING:
    from fleet_runtime.replay.engine import ReplayEngine

QUEUE_MAX = 50_000


class Lane:
    """One subscription's ordered consumer: its queue, position and what is left."""

    def __init__(self, sub: Subscription, subject: str) -> None:
        self.sub = sub
        self.stream = sub.stream
        self.subject = subject
        self.queue: asyncio.Queue[Msg] = asyncio.Queue(QUEUE_MAX)
        self.pending = 0
        self.position = 0
        self.held: Msg | None = None

    @property
    def busy(self) -> bool:
        """Whether the lane has messages left to apply."""
        return self.pending > 0 or self.held is not None or not self.queue.empty()

    async def next(self, wait_s: float) -> Msg:
        """The held-back message, else the next delivered one (TimeoutError after ``wait_s``)."""
        if self.held is not None:
            msg, self.held = self.held, None
            return msg
        return await asyncio.wait_for(self.queue.get(), wait_s)


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

"""The replay engine on a real nats-server, against a target kept in memory.

The target is a double of the runtime's own port (``ReplayTarget``): these tests are
about the engine's reading, catch-up inside the swap and bounded retries. The store
adapters are tested on their real servers in their services' tests.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import nats
import pytest
from nats.js.client import JetStreamContext
from runtime_testkit.events import fills

from fleet_events import TRADES_STREAM, TradeExecuted
from fleet_runtime.binding import Subscription
from fleet_runtime.delivery import Batch
from fleet_runtime.errors import ConfigError, UserError
from fleet_runtime.publisher import EventPublisher
from fleet_runtime.replay import (
    CatchUp,
    Comparison,
    Interrupt,
    ReplayEngine,
    ReplayInterrupted,
    ReplayPlan,
    ReplayRefused,
    SwapResult,
)

DURABLE = "rt-test"


class MemoryTarget:
    """Live and shadow are lists of applied stream sequences; the swap replaces live."""

    description = "memory"

    def __init__(
        self,
        live_checkpoint: Callable[[], Awaitable[int]],
        refusal: str | None = None,
        committing: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.live: list[int] = [-1]
        self.committing = committing
        """Awaited after ``before_commit``, as a store's commit round trip would be."""
        self.shadow: list[int] | None = None
        self.live_checkpoint = live_checkpoint
        self.refusal = refusal
        self.discarded = 0
        self.swaps_tried = 0

    def partial_refusal(self) -> str | None:
        return self.refusal

    @asynccontextmanager
    async def lock(self, holder: str) -> AsyncIterator[None]:
        yield

    async def prepare(self) -> str | None:
        self.shadow = []
        return None

    def subscriptions(self) -> Sequence[Subscription]:
        async def handler(batch: Batch[Any]) -> None:
            assert self.shadow is not None
            self.shadow += [d.stream_seq for d in batch]

        return [Subscription(TRADES_STREAM, DURABLE, handler, accepts=(TradeExecuted,))]

    async def compare(self, catch_up: CatchUp) -> Comparison:
        at = await catch_up(0)
        return Comparison(at, at, [])

    async def swap(self, catch_up: CatchUp, *, keep_old: bool) -> SwapResult:
        self.swaps_tried += 1
        live_at = await self.live_checkpoint()
        position = await catch_up(live_at)
        catch_up.before_commit()
        if self.committing is not None:
            await self.committing()
        assert self.shadow is not None
        self.live, self.shadow = self.shadow, None
        return SwapResult(position, live_at, 0.0, ["memory"], None)

    async def discard(self) -> None:
        self.discarded += 1
        self.shadow = None

    async def drop_old(self) -> list[str]:
        return []

    async def close(self) -> None:
        return None


@pytest.fixture
async def loaded(
    js: JetStreamContext, nats_url: str
) -> AsyncIterator[tuple[Any, JetStreamContext]]:
    """A NATS client for the engine, with 300 fills in TRADES."""
    await EventPublisher(js).publish_many(fills(300))
    nc = await nats.connect(nats_url)
    try:
        yield nc, js
    finally:
        await nc.close()


async def test_swap_catches_up_to_a_live_checkpoint_published_during_the_swap(
    loaded: tuple[Any, JetStreamContext],
) -> None:
    nc, js = loaded

    async def live_moved_on() -> int:
        # The stream moves on and the live worker commits up to its new end meanwhile.
        await EventPublisher(js).publish_many(fills(50, start=301))
        return 350

    target = MemoryTarget(live_moved_on)
    report = await ReplayEngine(nc, target, batch_size=64).run(ReplayPlan())
    assert report.swap is not None
    assert (report.swap.live_checkpoint, report.swap.position) == (350, 350)
    # Every event once, in stream order, up to exactly the live checkpoint.
    assert target.live == list(range(1, 351))
    assert report.applied == 350


async def test_live_out_of_reach_gives_up_after_bounded_attempts_with_live_untouched(
    loaded: tuple[Any, JetStreamContext],
) -> None:
    nc, _ = loaded

    async def far_ahead() -> int:
        return 10_000

    target = MemoryTarget(far_ahead)
    engine = ReplayEngine(nc, target, swap_attempts=3, catch_up_timeout_s=0.2)
    with pytest.raises(UserError, match="stayed ahead of the replay through 3 swap attempts"):
        await engine.run(ReplayPlan())
    assert target.swaps_tried == 3
    assert target.live == [-1]
    assert (target.shadow, target.discarded) == (None, 1)


async def test_from_seq_starts_there_and_a_refusing_store_refuses_partial_rebuilds(
    loaded: tuple[Any, JetStreamContext],
) -> None:
    nc, _ = loaded

    async def at_end() -> int:
        return 300

    target = MemoryTarget(at_end)
    report = await ReplayEngine(nc, target).run(ReplayPlan(from_seq=251))
    assert target.live == list(range(251, 301))
    assert report.applied == 50

    with pytest.raises(ConfigError, match=r"--from-seq 301 is outside stream TRADES, .* 1\.\.300"):
        await ReplayEngine(nc, MemoryTarget(at_end)).run(ReplayPlan(from_seq=301))
    refusing = MemoryTarget(at_end, refusal="it folds history")
    with pytest.raises(ReplayRefused, match="would be wrong: it folds history"):
        await ReplayEngine(nc, refusing).run(ReplayPlan(from_seq=5))
    assert refusing.shadow is None, "refused before any work"


async def test_undecodable_events_are_skipped_and_counted(
    loaded: tuple[Any, JetStreamContext],
) -> None:
    nc, js = loaded
    await js.publish("trade.executed.bot-1", b"{not json")
    await EventPublisher(js).publish_many(fills(10, start=301))

    async def at_end() -> int:
        return 311

    target = MemoryTarget(at_end)
    report = await ReplayEngine(nc, target).run(ReplayPlan())
    assert (report.applied, report.invalid, report.position) == (310, 1, 311)
    assert target.live == [*range(1, 301), *range(302, 312)]


async def test_dry_run_compares_and_discards(loaded: tuple[Any, JetStreamContext]) -> None:
    nc, _ = loaded

    async def at_end() -> int:
        return 300

    target = MemoryTarget(at_end)
    report = await ReplayEngine(nc, target).run(ReplayPlan(dry_run=True))
    assert report.compared == Comparison(300, 300, [])
    assert (target.live, target.discarded, target.swaps_tried) == ([-1], 1, 0)


def stopped_in_the_first_swap(target: MemoryTarget) -> None:
    """Live as it was, the shadow removed, and no second swap attempt."""
    assert (target.swaps_tried, target.live) == (1, [-1])
    assert (target.shadow, target.discarded) == (None, 1)


async def test_a_signal_whose_cancel_asyncio_loses_still_stops_the_swap(
    loaded: tuple[Any, JetStreamContext],
) -> None:
    """Ctrl-C must stop a swap even when its cancel never reaches the engine.

    On Python 3.11 ``asyncio.wait_for`` (behind every nats-py request, e.g. the MongoDB
    adapter's consumer pauses and polls inside its swap) returns a reply that arrived in
    the same loop turn as the cancel; the replay then swapped and exited 0. Here the
    live checkpoint is read that way, with the signal in the reply's loop turn.
    """
    nc, _ = loaded
    interrupt = Interrupt()
    returned = []

    async def live_read_as_ctrl_c_arrives() -> int:
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[int] = loop.create_future()
        loop.call_soon(reply.set_result, 300)
        loop.call_soon(interrupt.received, signal.SIGINT)  # as the loop's signal handler
        at = await asyncio.wait_for(reply, 5)
        returned.append(at)
        return at

    target = MemoryTarget(live_read_as_ctrl_c_arrives)
    with pytest.raises(ReplayInterrupted, match="SIGINT"), interrupt.installed():
        await ReplayEngine(nc, target, interrupt=interrupt).run(ReplayPlan())
    if sys.version_info < (3, 12):
        assert returned == [300], "the cancel was lost: only the recorded signal stopped it"
    stopped_in_the_first_swap(target)


async def test_ctrl_c_during_the_swap_catch_up_stops_it_with_live_untouched(
    loaded: tuple[Any, JetStreamContext],
) -> None:
    nc, _ = loaded
    interrupt = Interrupt()

    async def ahead_as_ctrl_c_arrives() -> int:
        os.kill(os.getpid(), signal.SIGINT)
        return 301  # past the stream's end: the catch-up waits until the signal ends it

    target = MemoryTarget(ahead_as_ctrl_c_arrives)
    with pytest.raises(ReplayInterrupted) as stopped, interrupt.installed():
        await ReplayEngine(nc, target, interrupt=interrupt).run(ReplayPlan())
    assert stopped.value.exit_code == 130
    # Stopped within the first attempt (a catch-up running out would have retried).
    stopped_in_the_first_swap(target)


async def test_a_signal_once_the_swap_commits_lets_it_finish(
    loaded: tuple[Any, JetStreamContext],
) -> None:
    nc, _ = loaded
    interrupt = Interrupt()

    async def at_end() -> int:
        return 300

    async def commit_round_trip() -> None:
        asyncio.get_running_loop().call_soon(interrupt.received, signal.SIGINT)
        await asyncio.sleep(0.05)

    target = MemoryTarget(at_end, committing=commit_round_trip)
    with interrupt.installed():
        report = await ReplayEngine(nc, target, interrupt=interrupt).run(ReplayPlan())
    assert report.swap is not None
    assert target.live == list(range(1, 301))
    assert (interrupt.signum, target.discarded) == (signal.SIGINT, 0)

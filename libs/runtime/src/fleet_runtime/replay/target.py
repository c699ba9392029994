"""What a store offers the replay engine: a shadow to build into and an atomic swap.

The engine (``fleet_runtime.replay.engine``) owns reading the streams, decoding, progress
and the retry of the swap; a service supplies only a ``ReplayTarget`` for its store. It
must never touch the live data before ``swap`` and must leave the live data exactly as
it was when ``swap`` raises.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from fleet_runtime.binding import Subscription
from fleet_runtime.errors import UserError


class CatchUp(Protocol):
    """Brings the shadow up to live positions, within the engine's bound.

    ``await catch_up(seq)`` applies a single-subscription worker's stream into the shadow
    until it covers ``seq`` and returns the position reached (>= ``seq``);
    ``await catch_up.streams({stream: seq})`` does the same per stream for a worker with
    one subscription per stream. Both raise ``SwapBehind`` when they cannot get there in
    time, and ``ReplayInterrupted`` once the replay received SIGINT or SIGTERM.
    """

    def __call__(self, seq: int) -> Awaitable[int]:
        """Catch the only stream up to ``seq``."""
        ...

    def streams(self, positions: Mapping[str, int]) -> Awaitable[dict[str, int]]:
        """Catch each stream up to its position; the positions reached."""
        ...

    def before_commit(self) -> None:
        """The swap is about to become irreversible (its commit, script or first rename).

        Raises ``ReplayInterrupted`` if the replay received a signal; after it, signals no
        longer cancel the replay, so the commit and the clean-up after it finish. Call it
        with no ``await`` between it and the commit. Catching up again afterwards means
        the commit did not happen (e.g. a script that refused), and signals stop the
        replay again.
        """
        ...


class ReplayLocked(UserError):
    """Another replay of the same worker holds the store's replay lock."""


class SwapBehind(Exception):
    """The shadow could not reach the live checkpoint in time; nothing was swapped."""


class ReplayRefused(UserError):
    """The store cannot do what was asked (e.g. a partial rebuild that would be wrong)."""


@dataclass(frozen=True)
class TableCompare:
    """One table, collection or key family: live against shadow."""

    name: str
    live_rows: int
    shadow_rows: int
    live_checksum: str
    shadow_checksum: str

    @property
    def same(self) -> bool:
        """Whether live and shadow hold the same rows."""
        return self.live_rows == self.shadow_rows and self.live_checksum == self.shadow_checksum


@dataclass(frozen=True)
class Comparison:
    """A dry run's result: each table live against shadow, and the positions compared."""

    live_position: int
    shadow_position: int
    tables: Sequence[TableCompare]

    @property
    def same(self) -> bool:
        """Whether live and shadow match at the same position."""
        return self.live_position == self.shadow_position and all(t.same for t in self.tables)


@dataclass(frozen=True)
class SwapResult:
    """What the swap did."""

    position: int
    """The stream sequence the new live state covers (its checkpoints' value)."""
    live_checkpoint: int
    """The live checkpoint found while the live state was locked (<= ``position``)."""
    pause_s: float
    """How long live readers and the live worker were held by the swap."""
    replaced: Sequence[str]
    """The live tables/collections/keys that were replaced."""
    kept_as: str | None
    """Where the replaced state was kept (``--keep-old``), or None once dropped."""


class ReplayTarget(Protocol):
    """A store's shadow/swap adapter, opened by the worker's ``WorkerSpec.replay`` factory.

    Optional attributes the engine reads when present: ``keeps_history_of`` (streams whose
    events past retention the shadow carries over from live) and ``replay_batch_size``
    (events per shadow write when the operator does not pass ``--batch-size``).
    """

    @property
    def description(self) -> str:
        """Where the live state lives, for messages (e.g. ``PostgreSQL schema trading``)."""
        ...

    def partial_refusal(self) -> str | None:
        """Why a rebuild from part of the stream would be wrong, or None.

        Part: from a later point than the stream's first event (``--since``,
        ``--from-seq``), or one partition's events only (``--partition``).
        """
        ...

    def lock(self, holder: str) -> AbstractAsyncContextManager[None]:
        """Hold the store's replay lock for ``holder``; ``ReplayLocked`` names the other holder.

        The lock must go away with the process (a killed replay must not block the next).
        """
        ...

    async def prepare(self) -> str | None:
        """Remove any leftover shadow and create an empty one; say what was removed, if any."""
        ...

    def subscriptions(self) -> Sequence[Subscription]:
        """The worker's own subscriptions, bound to a store that writes into the shadow."""
        ...

    async def compare(self, catch_up: CatchUp) -> Comparison:
        """Compare shadow and live at one position where it can, changing nothing live.

        The adapter waits (bounded) for the live checkpoint to reach the shadow's
        position, holds the live worker's commits, calls ``catch_up(L)`` and compares.
        """
        ...

    async def swap(self, catch_up: CatchUp, *, keep_old: bool) -> SwapResult:
        """Atomically make the shadow live, covering at least the live checkpoint.

        Inside the swap the adapter must stop the live worker from committing, read its
        checkpoint ``L``, call ``catch_up(L)`` and give every live checkpoint the position
        returned, then call ``catch_up.before_commit()`` right before its commit.
        ``SwapBehind`` or ``ReplayInterrupted`` from either must leave live untouched.
        """
        ...

    async def discard(self) -> None:
        """Remove the shadow (after a dry run or a failed replay)."""
        ...

    async def drop_old(self) -> list[str]:
        """Remove state kept by earlier ``--keep-old`` replays; what was removed."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class CompletesShadow(Protocol):
    """A target whose shadow takes more than the streams give (market-ingest: the candles
    older than the stream, from the market-history tiers)."""

    async def complete_shadow(self) -> str | None:
        """Add to the shadow once the streams are applied, before the compare or swap; a
        line on what was added (or could not be), if any."""
        ...


ReplayFactory = Callable[[object], Awaitable[ReplayTarget]]
"""``factory(settings)``: opens a worker's ``ReplayTarget`` from its own settings."""

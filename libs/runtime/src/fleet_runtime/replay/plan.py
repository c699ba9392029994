"""What the operator asked a replay for, and what the replay did."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from fleet_runtime.replay.target import Comparison, SwapResult


@dataclass(frozen=True)
class ReplayPlan:
    """What the operator asked for."""

    from_seq: int | None = None
    since: datetime | None = None
    dry_run: bool = False
    keep_old: bool = False
    partition: int | None = None
    from_archive: bool = False
    """Read each stream's archived messages first, then the stream after the archive's end."""

    @property
    def partial(self) -> bool:
        """Whether the replay sees only part of the stream (a later start, or one partition)."""
        return self.from_seq is not None or self.since is not None or self.partition is not None


@dataclass
class ReplayReport:
    """What a replay did."""

    applied: int = 0
    invalid: int = 0
    """Undecodable or unaccepted events (the live worker dead-letters them)."""
    rejected: int = 0
    """Events the handler rejected (the live worker dead-letters them too)."""
    position: int = 0
    """The stream position the shadow reached (the first stream's, with several)."""
    positions: dict[str, int] = field(default_factory=dict)
    """Per stream, the position the shadow reached."""
    archived: dict[str, int] = field(default_factory=dict)
    """Per stream read from the archive, the last archived sequence read (the stream was
    read from the one after it)."""
    from_archive: int = 0
    """Events applied from the archive (the rest came from the streams)."""
    seconds: float = 0.0
    """From the start (lock held) to the end of the swap or comparison."""
    apply_seconds: float = 0.0
    """From the first event applied to the shadow catching up with the stream."""
    cleaned: str | None = None
    swap: SwapResult | None = None
    swap_attempts: int = 0
    compared: Comparison | None = None

    @property
    def rate(self) -> float:
        """Events applied per second, swap included."""
        return self.applied / max(self.seconds, 1e-9)

    @property
    def apply_rate(self) -> float:
        """Events applied per second while catching up (set-up and swap left out)."""
        return self.applied / max(self.apply_seconds, 1e-9)

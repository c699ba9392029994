"""Rebuild a worker's store from its streams while the live worker keeps running.

``engine`` reads and applies, ``target`` is the port each store implements (shadow, swap,
compare, lock), ``progress`` draws the bar, ``lock`` names the holder of a replay and
``interrupt`` decides what a signal stops.
"""

from __future__ import annotations

import importlib
from typing import Any, cast

from fleet_runtime.errors import ConfigError
from fleet_runtime.replay.engine import ReplayEngine
from fleet_runtime.replay.interrupt import Interrupt, ReplayInterrupted
from fleet_runtime.replay.plan import ReplayPlan, ReplayReport
from fleet_runtime.replay.target import (
    CatchUp,
    Comparison,
    CompletesShadow,
    ReplayFactory,
    ReplayLocked,
    ReplayRefused,
    ReplayTarget,
    SwapBehind,
    SwapResult,
    TableCompare,
)
from fleet_runtime.workers import WorkerSpec

__all__ = [
    "CatchUp",
    "Comparison",
    "CompletesShadow",
    "Interrupt",
    "ReplayEngine",
    "ReplayFactory",
    "ReplayInterrupted",
    "ReplayLocked",
    "ReplayPlan",
    "ReplayRefused",
    "ReplayReport",
    "ReplayTarget",
    "SwapBehind",
    "SwapResult",
    "TableCompare",
    "replay_factory",
]


def replay_factory(spec: WorkerSpec) -> ReplayFactory:
    """The worker's replay-target factory, or a one-line error if it has none."""
    found = spec.replay
    if found is None:
        raise ConfigError(
            f"worker {spec.name!r} ({spec.store}) has no replayable store",
            fix="replay is available for workers whose service declares WorkerSpec.replay",
        )
    if callable(found):
        return cast("ReplayFactory", found)
    module, _, attr = found.partition(":")
    factory: Any = getattr(importlib.import_module(module), attr)
    return cast("ReplayFactory", factory)

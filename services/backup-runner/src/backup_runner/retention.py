"""Grandfather-father-son retention: which backups to keep, which to prune. Pure logic.

Per (target, scope), the newest backup of each of the last ``hourly`` hours, ``daily``
days and ``monthly`` months that have one is kept, and the newest backup of every
(target, scope) always is, whatever the policy says, and so is the newest one whose last
`fleet backup verify` found every object intact (should the newest turn out corrupt, a
good one is left). Archived stream segments have their own retention
(``archive_retention``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from backup_runner.manifest import Manifest


@dataclass(frozen=True)
class RetentionPolicy:
    """How many hourly, daily and monthly backups to keep per target and scope."""

    hourly: int = 24
    daily: int = 30
    monthly: int = 12


@dataclass(frozen=True)
class Decision:
    """Backups to keep (with why) and backups to prune, by id."""

    keep: dict[str, str]
    prune: list[str]


def _newest_per_bucket(
    ordered: Sequence[Manifest], bucket: Callable[[datetime], tuple[int, ...]], count: int
) -> dict[str, tuple[int, ...]]:
    kept: dict[str, tuple[int, ...]] = {}
    seen: set[tuple[int, ...]] = set()
    for manifest in ordered:  # newest first
        if len(seen) >= count:
            break
        key = bucket(manifest.finished_at)
        if key not in seen:
            seen.add(key)
            kept[manifest.backup_id] = key
    return kept


def decide(
    manifests: Sequence[Manifest], policy: RetentionPolicy, verified: Collection[str] = ()
) -> Decision:
    """Apply ``policy`` to every (target, scope) group of ``manifests``; ``verified``: the
    ids of backups whose last verification passed."""
    groups: dict[tuple[str, str | None], list[Manifest]] = {}
    for manifest in manifests:
        groups.setdefault((manifest.target, manifest.scope), []).append(manifest)
    keep: dict[str, str] = {}
    for ordered in groups.values():
        ordered.sort(key=lambda m: m.finished_at, reverse=True)
        keep.setdefault(ordered[0].backup_id, "newest of its target")
        good = next((m for m in ordered if m.backup_id in verified), None)
        if good is not None:
            keep.setdefault(good.backup_id, "newest verified of its target")
        rules: list[tuple[str, Callable[[datetime], tuple[int, ...]], int]] = [
            ("hourly", lambda t: (t.year, t.month, t.day, t.hour), policy.hourly),
            ("daily", lambda t: (t.year, t.month, t.day), policy.daily),
            ("monthly", lambda t: (t.year, t.month), policy.monthly),
        ]
        for name, bucket, count in rules:
            for backup_id in _newest_per_bucket(ordered, bucket, count):
                keep.setdefault(backup_id, name)
    prune = sorted(m.backup_id for m in manifests if m.backup_id not in keep)
    return Decision(keep, prune)

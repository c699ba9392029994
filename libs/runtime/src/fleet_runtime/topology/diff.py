"""Field-level comparison of a spec with a live nats-py config, server defaults normalised."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from nats.js.api import ConsumerConfig, StreamConfig

from fleet_runtime.topology.model import ConsumerSpec, StreamSpec
from fleet_runtime.topology.units import format_count, format_duration, format_size


@dataclass(frozen=True)
class FieldChange:
    """One field that differs: the live value, the file's value, and why it cannot be updated."""

    field: str
    live: str
    desired: str
    blocked: str | None = None

    def render(self) -> str:
        """`max_age: 72h -> 96h`, plus the reason when the server cannot update it."""
        text = f"{self.field}: {self.live} -> {self.desired}"
        return f"{text}  (requires recreate: {self.blocked})" if self.blocked else text


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _limit(value: Any) -> int:
    # The server reports "no limit" as -1; nats-py may hold None before the server answers.
    return -1 if value is None else int(value)


def _seconds(value: Any) -> float:
    return 0.0 if value is None else round(float(value), 6)


def _duration_text(value: Any) -> str:
    return "unlimited" if not value else format_duration(float(value))


def _subjects_text(value: Any) -> str:
    return "[" + ", ".join(value) + "]" if value else "none"


def _bool_text(value: Any) -> str:
    return "true" if value else "false"


def _text(value: Any) -> str:
    return "none" if value in (None, "") else str(value)


Blocker = Callable[[Any, Any], str | None]


@dataclass(frozen=True)
class _Rule:
    """How one file key maps to the server's config and how it may change."""

    key: str
    attr: str
    live: Callable[[Any], Any]
    show: Callable[[Any], str]
    blocker: Blocker | None = None


def _storage_blocker(old: Any, new: Any) -> str | None:
    return "the server cannot change a stream's storage type"


def _retention_blocker(old: Any, new: Any) -> str | None:
    if "workqueue" in (old, new):
        return "the server cannot change retention to or from workqueue"
    return None


def _deny_blocker(old: Any, new: Any) -> str | None:
    return "the server cannot turn this protection off once set" if old and not new else None


def _consumer_blocker(what: str) -> Blocker:
    def blocker(old: Any, new: Any) -> str | None:
        return f"the server cannot update a consumer's {what}"

    return blocker


_STREAM_RULES = (
    _Rule("subjects", "subjects", lambda v: sorted(v or []), _subjects_text),
    _Rule("description", "description", _text, _text),
    _Rule("storage", "storage", _plain, _text, _storage_blocker),
    _Rule("retention", "retention", _plain, _text, _retention_blocker),
    _Rule("max_age", "max_age", _seconds, _duration_text),
    _Rule("max_bytes", "max_bytes", _limit, format_size),
    _Rule("max_msgs", "max_msgs", _limit, format_count),
    _Rule("max_msgs_per_subject", "max_msgs_per_subject", _limit, format_count),
    _Rule("max_msg_size", "max_msg_size", _limit, format_size),
    _Rule("discard", "discard", _plain, _text),
    _Rule("replicas", "num_replicas", lambda v: v or 1, str),
    _Rule("duplicate_window", "duplicate_window", _seconds, _duration_text),
    _Rule("deny_delete", "deny_delete", bool, _bool_text, _deny_blocker),
    _Rule("deny_purge", "deny_purge", bool, _bool_text, _deny_blocker),
    _Rule("allow_rollup", "allow_rollup_hdrs", bool, _bool_text),
    _Rule("compression", "compression", lambda v: _plain(v) or "none", _text),
)

_CONSUMER_RULES = (
    _Rule("description", "description", _text, _text),
    _Rule("deliver_policy", "deliver_policy", _plain, _text, _consumer_blocker("deliver policy")),
    _Rule("ack_policy", "ack_policy", _plain, _text, _consumer_blocker("ack policy")),
    _Rule("ack_wait", "ack_wait", _seconds, _duration_text),
    _Rule("max_deliver", "max_deliver", _limit, format_count),
    _Rule(
        "backoff",
        "backoff",
        lambda v: [_seconds(s) for s in v or []],
        lambda v: "[" + ", ".join(format_duration(s) for s in v) + "]" if v else "none",
    ),
    _Rule("max_ack_pending", "max_ack_pending", _limit, format_count),
)


def _compare(rules: tuple[_Rule, ...], desired: Any, live: Any) -> list[FieldChange]:
    changes: list[FieldChange] = []
    for rule in rules:
        wanted = getattr(desired, rule.key)
        if wanted is None:
            continue  # not in the file: the server's value is not ours to judge
        want = rule.live(wanted)
        have = rule.live(getattr(live, rule.attr, None))
        if want != have:
            blocked = rule.blocker(have, want) if rule.blocker else None
            changes.append(FieldChange(rule.key, rule.show(have), rule.show(want), blocked))
    return changes


def _transform_text(src: str | None, dest: str | None) -> str:
    return f"{src} -> {dest}" if src else "none"


def diff_stream(spec: StreamSpec, live: StreamConfig) -> list[FieldChange]:
    """Fields of a stream that differ between the file and the server."""
    changes = _compare(_STREAM_RULES, spec, live)
    want = spec.partition.transform() if spec.partition else None
    have = live.subject_transform
    want_pair = (want.src, want.dest) if want else (None, None)
    have_pair = (have.src, have.dest) if have else (None, None)
    if want_pair != have_pair:
        changes.append(
            FieldChange("partition", _transform_text(*have_pair), _transform_text(*want_pair))
        )
    return changes


def live_filters(live: ConsumerConfig) -> list[str]:
    """A consumer's filters whichever field the server reports them in."""
    if live.filter_subjects:
        return sorted(live.filter_subjects)
    return [live.filter_subject] if live.filter_subject else []


def diff_consumer(
    spec: ConsumerSpec, partition: int | None, live: ConsumerConfig
) -> list[FieldChange]:
    """Fields of a durable that differ between the file and the server."""
    changes = _compare(_CONSUMER_RULES, spec, live)
    want = sorted(spec.filters_for(partition))
    have = live_filters(live)
    if want != have:
        changes.append(FieldChange("filter_subjects", _subjects_text(have), _subjects_text(want)))
    if live.deliver_subject:
        # Workers pull; a push consumer under the same durable name was made by someone else.
        changes.append(
            FieldChange(
                "kind",
                f"push ({live.deliver_subject})",
                "pull",
                "the server cannot turn a push consumer into a pull one",
            )
        )
    return changes

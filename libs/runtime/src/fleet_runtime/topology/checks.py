"""Cross-checks of a parsed streams.yaml that a single key cannot show (overlaps, coverage…)."""

from __future__ import annotations

from typing import NamedTuple

from fleet_runtime.topology.model import ConsumerSpec, StreamSpec
from fleet_runtime.topology.problems import Path
from fleet_runtime.topology.subjects import covered_by_any, covers, overlaps, subject_problem


class Finding(NamedTuple):
    """A problem before it is given a position."""

    path: Path
    message: str
    fix: str
    on_key: bool = False


def _check_stream(name: str, spec: StreamSpec) -> list[Finding]:
    found: list[Finding] = []
    base: Path = ("streams", name)
    for index, subject in enumerate(spec.subjects):
        problem = subject_problem(subject)
        if problem:
            found.append(
                Finding((*base, "subjects", index), problem, "write tokens like `trade.>`")
            )
    if spec.max_age and spec.duplicate_window and spec.duplicate_window > spec.max_age:
        # The server refuses a dedup window longer than the messages it remembers.
        found.append(
            Finding(
                (*base, "duplicate_window"),
                "duplicate_window is longer than max_age",
                "make duplicate_window at most max_age",
            )
        )
    part = spec.partition
    if part is not None:
        path = (*base, "partition", "subjects")
        tokens = part.subjects.split(".")
        wildcards = tokens.count("*")
        if subject_problem(part.subjects) or ">" in tokens or wildcards == 0:
            found.append(
                Finding(
                    path,
                    f"partition subjects {part.subjects!r} must be a subject "
                    "with `*` wildcards and no `>`",
                    "write e.g. `trade.*.*`",
                )
            )
        elif not covered_by_any(spec.subjects, part.subjects):
            found.append(
                Finding(
                    path,
                    f"partition subjects {part.subjects!r} are not captured "
                    f"by stream {name} ({', '.join(spec.subjects)})",
                    "partition a subset of the stream's subjects",
                )
            )
        bad_keys = [k for k in part.key_wildcards() if not 1 <= k <= wildcards]
        if bad_keys and wildcards:
            found.append(
                Finding(
                    (*base, "partition", "key"),
                    f"key wildcard {bad_keys[0]} does not exist in "
                    f"{part.subjects!r} (it has {wildcards} `*`)",
                    f"use indexes 1..{wildcards}",
                )
            )
    return found


def _check_overlaps(streams: dict[str, StreamSpec]) -> list[Finding]:
    found: list[Finding] = []
    names = list(streams)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            for index, subject in enumerate(streams[second].subjects):
                for other in streams[first].subjects:
                    if overlaps(subject, other):
                        found.append(
                            Finding(
                                ("streams", second, "subjects", index),
                                f"subject {subject!r} of stream {second} overlaps {other!r} of "
                                f"stream {first}; the server refuses two streams for one subject",
                                f"narrow the subjects so each message belongs to one stream "
                                f"(e.g. remove {subject!r} from {second})",
                            )
                        )
    return found


def _check_filters(index: int, spec: ConsumerSpec, streams: dict[str, StreamSpec]) -> list[Finding]:
    found: list[Finding] = []
    base: Path = ("consumers", index, "filter_subjects")
    stream = streams.get(spec.stream)
    for f_index, subject in enumerate(spec.filter_subjects):
        path = (*base, f_index)
        problem = subject_problem(subject)
        if problem:
            found.append(Finding(path, problem, "write a subject like `trade.executed.*`"))
            continue
        for other in spec.filter_subjects[:f_index]:
            if overlaps(subject, other):
                found.append(
                    Finding(
                        path,
                        f"filter {subject!r} overlaps filter {other!r} of "
                        "the same consumer (server error 10138)",
                        "merge them into one filter or make them disjoint",
                    )
                )
        if stream is None or covered_by_any(stream.subjects, subject):
            continue
        owners = [n for n, s in streams.items() if covered_by_any(s.subjects, subject)]
        if owners:
            found.append(
                Finding(
                    path,
                    f"filter {subject!r} is not in stream {spec.stream} "
                    f"({', '.join(stream.subjects)}); stream {owners[0]} holds it",
                    f"move it to a consumer with `stream: {owners[0]}`",
                )
            )
        else:
            found.append(
                Finding(
                    path,
                    f"worker {spec.worker} subscribes to {subject!r}, which "
                    "no stream captures, so it would never receive a message",
                    "correct the subject or add it to a stream's subjects",
                )
            )
    return found


def _check_partitions(index: int, spec: ConsumerSpec, stream: StreamSpec) -> list[Finding]:
    base: Path = ("consumers", index)
    if not spec.partitions or spec.partitions == 1:
        return []
    part = stream.partition
    if part is None or part.count != spec.partitions:
        have = f"has {part.count} partitions" if part else "is not partitioned"
        return [
            Finding(
                (*base, "partitions"),
                f"partitions: {spec.partitions} but stream {spec.stream} {have}",
                "make `partitions` equal the stream's `partition.count`",
            )
        ]
    found: list[Finding] = []
    if not spec.filter_subjects:
        found.append(
            Finding(
                (*base, "partitions"),
                "a partitioned consumer needs filter_subjects",
                f"add e.g. `filter_subjects: [{part.subjects}]`",
            )
        )
    for f_index, subject in enumerate(spec.filter_subjects):
        if not covers(part.subjects, subject):
            found.append(
                Finding(
                    (*base, "filter_subjects", f_index),
                    f"filter {subject!r} is not within the partitioned subjects "
                    f"{part.subjects!r}, so no partition token can be added",
                    f"filter with the same {len(part.subjects.split('.'))} tokens, "
                    f"e.g. {part.subjects!r}",
                )
            )
    return found


def _check_consumer(
    index: int, spec: ConsumerSpec, streams: dict[str, StreamSpec], declared: set[str]
) -> list[Finding]:
    base: Path = ("consumers", index)
    found: list[Finding] = []
    stream = streams.get(spec.stream)
    if stream is None and spec.stream in declared:
        return found  # the stream itself is invalid and reported; its checks would mislead
    if stream is None:
        known = ", ".join(streams) or "none"
        found.append(
            Finding(
                (*base, "stream"),
                f"stream {spec.stream!r} is not declared",
                f"use one of the declared streams ({known}) or declare it",
            )
        )
    found.extend(_check_filters(index, spec, streams))
    if stream is not None:
        found.extend(_check_partitions(index, spec, stream))
    backoff = spec.backoff or []
    if backoff and spec.max_deliver is not None and 0 < spec.max_deliver < len(backoff):
        found.append(
            Finding(
                (*base, "backoff"),
                f"backoff has {len(backoff)} steps but "
                f"max_deliver is {spec.max_deliver} (server error 10116)",
                f"raise max_deliver to at least {len(backoff)} or shorten backoff",
            )
        )
    if backoff and spec.ack_wait is not None and spec.ack_wait != backoff[0]:
        # The server replaces ack_wait with backoff[0]; keeping both would always show as drift.
        found.append(
            Finding(
                (*base, "ack_wait"),
                "ack_wait differs from the first backoff step, "
                "and with a backoff the server uses backoff[0] as ack_wait",
                "remove ack_wait or set it to the first backoff value",
            )
        )
    if spec.max_deliver == 0:
        found.append(
            Finding(
                (*base, "max_deliver"),
                "max_deliver 0 means nothing is delivered",
                "use a positive count or -1 for unlimited",
            )
        )
    return found


def check_topology(
    streams: dict[str, StreamSpec],
    consumers: list[tuple[int, ConsumerSpec]],
    declared: set[str] | None = None,
) -> list[Finding]:
    """Every cross-check problem of the valid streams and consumers (by original index).

    `declared` names every stream written in the file, valid or not.
    """
    declared = set(streams) if declared is None else declared
    found: list[Finding] = []
    for name, stream in streams.items():
        found.extend(_check_stream(name, stream))
    found.extend(_check_overlaps(streams))
    seen: dict[tuple[str, str], int] = {}
    for index, spec in consumers:
        found.extend(_check_consumer(index, spec, streams, declared))
        for name in spec.durable_names():
            key = (spec.stream, name)
            if key in seen:
                found.append(
                    Finding(
                        ("consumers", index, "worker"),
                        f"durable {name!r} on stream {spec.stream} is declared twice "
                        f"(also consumers[{seen[key]}])",
                        "merge the two entries or set a distinct `durable`",
                    )
                )
            seen.setdefault(key, index)
    return found

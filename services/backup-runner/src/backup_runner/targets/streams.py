"""Streams: messages after the last archived sequence as zstd JSON-lines segments.

Segments are keyed ``streams/<STREAM>/<first>-<last>.jsonl.zst`` (``archive_chain``):
the range of stream sequences the segment covers. A
stream archived with a subject filter (MARKET: candles only) has fewer messages than
its range. Each line keeps a message exactly: sequence, subject,
time, headers and the payload in base64. The archive is a chain: a segment that does not
start at the previous one's last + 1 (or a first segment after the chain's start) is a
gap, reported in the manifest and the completed event, never skipped over in silence.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
from datetime import UTC, datetime
from typing import Any

import nats.errors
import nats.js.errors
import zstandard
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext

from backup_runner.archive_chain import (
    archived_ranges,
    chain_gaps,
    pruned_through,
    segment_key,
)
from backup_runner.manifest import Manifest, ManifestObject, list_manifests
from backup_runner.objects import ObjectStore
from backup_runner.targets import TargetResult
from fleet_runtime.binding import ack_position
from fleet_runtime.errors import StoreUnavailable
from fleet_runtime.pull import PullSource
from fleet_runtime.security.grants import reader_consumer

_FETCH = 1000


def _line(msg: Msg, seq: int) -> bytes:
    # The stored time is the ack subject's nanosecond stamp (the token before the last),
    # as nats-py's ``msg.metadata`` reads it, without parsing every other token.
    stamp = int(msg.reply.rsplit(".", 2)[-2])
    record = {
        "seq": seq,
        "subject": msg.subject,
        "time": datetime.fromtimestamp(stamp / 1_000_000_000, UTC).isoformat(),
        "headers": dict(msg.headers or {}),
        "data_b64": base64.b64encode(msg.data).decode(),
    }
    return json.dumps(record, separators=(",", ":"), sort_keys=True).encode() + b"\n"


def segment_records(raw: bytes) -> list[dict[str, Any]]:
    """The message records of a segment (its plaintext), in the order written."""
    text = zstandard.ZstdDecompressor().decompressobj().decompress(raw)
    return [json.loads(line) for line in text.splitlines() if line]


def record_data(record: dict[str, Any]) -> bytes:
    """A record's payload, exactly as the stream held it."""
    return base64.b64decode(record["data_b64"])


def segment_problem(raw: bytes, first: int, last: int) -> str | None:
    """None when ``raw`` is a readable segment of the range ``first``..``last``: messages
    in order, none outside the range, the last one at ``last``."""
    try:
        seqs = [int(record["seq"]) for record in segment_records(raw)]
    except (zstandard.ZstdError, ValueError, KeyError, TypeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    if not seqs or seqs[0] < first or seqs[-1] != last:
        return f"holds sequences {seqs[:1]}..{seqs[-1:]}, its key says {first}-{last}"
    if any(b <= a for a, b in itertools.pairwise(seqs)):
        return "sequences out of order"
    return None


def _adopt(
    store: ObjectStore, raw: ObjectStore, stream: str, ranges: list[tuple[int, int]], covered: int
) -> tuple[list[ManifestObject], list[str]]:
    """Segments after ``covered`` that no manifest lists (a run killed after writing them),
    each read back and checked; the unreadable ones reported instead. ``raw`` reads the
    stored bytes (encrypted ones included) for the manifest's size and digest."""
    objects: list[ManifestObject] = []
    problems: list[str] = []
    for first, last in ranges:
        if first <= covered:
            continue
        key = segment_key(stream, first, last)
        try:
            plain = b"".join(store.get_chunks(key))
        except Exception as exc:  # a segment that does not decrypt is unreadable
            if isinstance(exc, StoreUnavailable):
                raise
            problems.append(f"{stream} segment {first}-{last} unreadable: {exc}")
            continue
        problem = segment_problem(plain, first, last)
        if problem is not None:
            problems.append(f"{stream} segment {first}-{last} unreadable: {problem}")
            continue
        stored = b"".join(raw.get_chunks(key))
        objects.append(
            ManifestObject(
                key=key,
                size=len(stored),
                sha256=hashlib.sha256(stored).hexdigest(),
                what=f"{stream} messages {first}-{last} (written by an interrupted run, checked)",
            )
        )
    return objects, problems


async def _archive_stream(
    js: JetStreamContext,
    stream: str,
    store: ObjectStore,
    raw: ObjectStore,
    segment_max: int,
    covered: int,
    subjects: list[str] | None,
    result: TargetResult,
) -> None:
    ranges = await asyncio.to_thread(archived_ranges, store, stream)
    pruned = await asyncio.to_thread(pruned_through, raw, stream)
    result.gaps.extend(chain_gaps(stream, ranges, pruned))
    adopted, unreadable = await asyncio.to_thread(
        _adopt, store, raw, stream, ranges, max(covered, pruned)
    )
    result.objects.extend(adopted)
    result.gaps.extend(unreadable)
    # Retention never removes a stream's newest segment; the marker is the fallback.
    archived = max(ranges[-1][1] if ranges else 0, pruned)
    info = await js.stream_info(stream)
    last = info.state.last_seq
    wanted = subjects or list(info.config.subjects or [])
    if last <= archived:
        result.positions[f"stream.{stream}"] = {
            "archived_through": archived,
            "last_seq": last,
            "subjects": wanted,
        }
        return
    start = max(archived + 1, info.state.first_seq)
    if start > archived + 1:
        # Gone from the stream (retention, deletion) before they were archived.
        result.gaps.append(f"{stream} {archived + 1}-{start - 1} missing from the archive")
    # The one consumer backup-runner's NATS user may create and pull on any stream
    # (docs/security.md); one archive at a time per stream, a leftover is replaced.
    name = reader_consumer("backup-runner")
    config = ConsumerConfig(
        name=name,
        ack_policy=AckPolicy.NONE,
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=start,
        filter_subjects=wanted,
        inactive_threshold=60.0,
        mem_storage=True,
    )
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await js.delete_consumer(stream, name)
    await js.add_consumer(stream, config)
    # Callback-driven pull (the runtime's PullSource): nats-py's fetch() hands over about
    # one message per call when the reader keeps up, several times slower.
    nc: NATS = js._nc  # the context's connection: PullSource drives it directly
    source = PullSource(nc, stream, name, batch=_FETCH, inflight=2)
    await source.start()
    # A segment covers a range of stream sequences, from the one after the previous
    # segment to its last message: with a subject filter (MARKET candles, not ticks) or
    # deleted messages the range holds fewer messages, and the chain still has no hole.
    seq = archived
    range_first = start
    exhausted = False
    try:
        while seq < last and not exhausted:
            lines: list[bytes] = []
            while seq < last and len(lines) < segment_max:
                msgs = await source.take(segment_max - len(lines), 0.02, 5.0)
                for msg in msgs:
                    _, seq, _ = ack_position(msg.reply)
                    lines.append(_line(msg, seq))
                # The ack subject's last token: messages of the filter after this one.
                pending = int(msgs[-1].reply.rsplit(".", 1)[-1]) if msgs else None
                if pending == 0 or (
                    pending is None and not (await js.consumer_info(stream, name)).num_pending
                ):
                    exhausted = True  # nothing more matches the filter up to now
                    break
            if not lines:
                break
            data = zstandard.ZstdCompressor(level=3).compress(b"".join(lines))
            key = segment_key(stream, range_first, seq)
            stored = await asyncio.to_thread(store.put_bytes, key, data)
            result.objects.append(
                ManifestObject.of(stored, f"{stream} messages {range_first}-{seq} ({len(lines)})")
            )
            range_first = seq + 1
    finally:
        await source.close()
        with contextlib.suppress(nats.errors.Error):
            await js.delete_consumer(stream, name)
    result.positions[f"stream.{stream}"] = {
        "archived_through": seq,
        "last_seq": last,
        "subjects": wanted,
    }


def manifest_coverage(manifests: list[Manifest]) -> dict[str, int]:
    """Per stream, the highest ``archived_through`` a completed stream backup recorded."""
    covered: dict[str, int] = {}
    for manifest in manifests:
        for name, position in manifest.positions.items():
            if name.startswith("stream.") and isinstance(position, dict):
                stream = name.removeprefix("stream.")
                through = int(position.get("archived_through", 0))
                covered[stream] = max(covered.get(stream, 0), through)
    return covered


async def back_up(
    *,
    js: JetStreamContext,
    streams: list[str],
    store: ObjectStore,
    raw: ObjectStore,
    segment_max: int,
    subjects: dict[str, list[str]] | None = None,
) -> TargetResult:
    """Archive each stream in ``streams`` from its last archived sequence to its end now.

    The manifest lists the segments this run wrote and those after the last completed
    stream backup that no manifest lists yet, so the manifests together cover the chain.
    """
    result = TargetResult(tools={"zstandard": zstandard.__version__, "format": "jsonl-v1"})
    manifests = await asyncio.to_thread(list_manifests, raw)
    covered = manifest_coverage([m for m in manifests if m.target == "stream"])
    for stream in streams:
        await _archive_stream(
            js,
            stream,
            store,
            raw,
            segment_max,
            covered.get(stream, 0),
            (subjects or {}).get(stream),
            result,
        )
    return result

"""The cold market-history tier: closed candles compacted from the stream archive into Parquet.

The stream target archives MARKET's candle events (``market.candle.>``) as segments; right
after, this step reads the segments past its recorded position, groups their candles by
file (series and period, ``fleet_events.history``), merges each group into what the file
holds (an event for a period already there replaces it: the later one in the stream wins,
as in the warm tier, so a late correction rewrites its file), writes each whole file again
(one PUT: a reader sees the old file or the new one, never a part) and only then records
its position. A run stopped before that repeats the same merge and writes identical
bytes. Files past their interval's retention are deleted, and candles of such periods are
not written back. The tier can be rebuilt from the archive by deleting the position object.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from backup_runner.archive_chain import archived_ranges, pruned_through, segment_key
from backup_runner.candlefiles import ColdRetention, Rows, decode, encode, representable, values_of
from backup_runner.objects import ObjectMissing, ObjectStore
from backup_runner.targets.streams import record_data, segment_problem, segment_records
from fleet_events import DecodeError, MarketCandle
from fleet_events import decode as decode_event
from fleet_events.history import COLD_PREFIX, COLD_STATE_KEY, cold_key, cold_period
from fleet_runtime.errors import StoreUnavailable
from fleet_runtime.logs import get_logger

log = get_logger("backup_runner.coldtier")

FORMAT = "candles-parquet-v1"
_CANDLE_SUBJECT = "market.candle."


@dataclass
class ColdResult:
    """What one compaction did: its position, the files written and deleted, the problems."""

    through: int
    candles: int = 0
    written: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def position(self) -> dict[str, object]:
        """The manifest's record of this run."""
        return {
            "archived_through": self.through,
            "candles": self.candles,
            "files_written": len(self.written),
            "files_deleted": len(self.deleted),
        }


def read_position(files: ObjectStore, stream: str) -> int:
    """The last archived sequence of ``stream`` whose candles are in the files (0: none)."""
    try:
        state = json.loads(b"".join(files.get_chunks(COLD_STATE_KEY)))
    except ObjectMissing:
        return 0
    except ValueError:
        return 0  # an unreadable position: compact again from the start (idempotent)
    if not isinstance(state, dict) or state.get("stream") != stream:
        return 0
    return int(state.get("archived_through", 0))


def _write_position(files: ObjectStore, stream: str, through: int) -> None:
    state = {"stream": stream, "archived_through": through, "format": FORMAT}
    files.put_bytes(COLD_STATE_KEY, json.dumps(state, sort_keys=True).encode())


def _merge_file(files: ObjectStore, key: str, new: Rows, result: ColdResult) -> None:
    try:
        stored = b"".join(files.get_chunks(key))
    except ObjectMissing:
        stored = b""
    held: Rows = {}
    if stored:
        try:
            held = decode(stored)
        except Exception as exc:  # pyarrow raises several types for a damaged file
            result.problems.append(
                f"{key} was unreadable ({type(exc).__name__}) and is rewritten with this "
                "run's candles only: rebuild the cold tier from the archive (delete "
                f"{COLD_STATE_KEY}) to restore the rest"
            )
    data = encode({**held, **new})
    if data != stored:
        files.put_bytes(key, data)
        result.written.append(key)


def _flush(files: ObjectStore, pending: dict[str, Rows], result: ColdResult) -> None:
    for key in sorted(pending):
        _merge_file(files, key, pending[key], result)
    pending.clear()


def _segment(segments: ObjectStore, stream: str, first: int, last: int) -> list[dict[str, object]]:
    key = segment_key(stream, first, last)
    try:
        plain = b"".join(segments.get_chunks(key))
    except StoreUnavailable:
        raise
    except Exception as exc:  # missing, or does not decrypt
        raise _Unreadable(f"{key}: {type(exc).__name__}: {exc}") from None
    problem = segment_problem(plain, first, last)
    if problem is not None:
        raise _Unreadable(f"{key}: {problem}")
    return segment_records(plain)


class _Unreadable(Exception):
    pass


def compact(
    *,
    segments: ObjectStore,
    files: ObjectStore,
    stream: str,
    retention: ColdRetention,
    now: datetime,
    flush_at: int = 50_000,
) -> ColdResult:
    """Bring the cold tier up to the end of ``stream``'s archive, then apply retention.

    ``segments`` reads the archive (decrypting it when it is encrypted); ``files`` is the
    bucket in the clear, where the Parquet files go so any reader can open them. Memory
    holds at most ``flush_at`` candles before they are merged into their files.
    """
    recorded = read_position(files, stream)
    result = ColdResult(recorded)
    pruned = pruned_through(segments, stream)
    if pruned > result.through:
        # Archive retention removed segments this tier never compacted: say so once.
        result.problems.append(
            f"{stream} {result.through + 1}-{pruned} were pruned from the archive before the "
            "cold tier compacted them: their candles are not in the cold tier"
        )
        result.through = pruned
    pending: dict[str, Rows] = {}
    held = 0
    seen = result.through
    for first, last in archived_ranges(segments, stream):
        if last <= result.through:
            continue
        try:
            records = _segment(segments, stream, first, last)
        except _Unreadable as exc:
            # Stop here rather than skip it: its candles would be missing for good. The
            # next run starts again at this segment once an intact copy is back.
            result.problems.append(f"cold tier stopped at an unreadable archive segment {exc}")
            break
        for record in records:
            seq = int(str(record["seq"]))
            if seq <= result.through or not str(record["subject"]).startswith(_CANDLE_SUBJECT):
                continue
            try:
                candle = decode_event(record_data(record)).data
            except DecodeError as exc:
                result.problems.append(f"{stream} seq {seq} left out of the cold tier: {exc}")
                continue
            if not isinstance(candle, MarketCandle):
                continue
            if not representable(candle):
                result.problems.append(
                    f"{stream} seq {seq} left out of the cold tier: a value does not fit "
                    "decimal128(38, 18) without rounding"
                )
                continue
            if retention.expired(
                candle.interval, cold_period(candle.interval, candle.open_time)[1], now
            ):
                continue
            key = cold_key(candle.interval, candle.symbol, candle.open_time)
            pending.setdefault(key, {})[candle.open_time] = values_of(candle)
            held += 1
            result.candles += 1
        seen = last
        if held >= flush_at:
            _flush(files, pending, result)
            _write_position(files, stream, seen)
            held = 0
    _flush(files, pending, result)
    if seen != recorded:
        _write_position(files, stream, seen)
    result.through = seen
    result.deleted = apply_retention(files, retention, now)
    log.info(
        "cold_tier_compacted",
        archived_through=result.through,
        candles=result.candles,
        files_written=len(result.written),
        files_deleted=len(result.deleted),
        problems=len(result.problems),
    )
    return result


def apply_retention(files: ObjectStore, retention: ColdRetention, now: datetime) -> list[str]:
    """Delete the cold files past their interval's retention; the keys deleted."""
    expired = retention.expired_keys(files.keys(COLD_PREFIX), now)
    for key in expired:
        files.delete(key)
    return expired

"""The chaos suite's traffic: valid events decode, each malformed kind is refused as such."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from fleet_events import (
    DecodeError,
    InvalidEvent,
    MalformedEvent,
    UnknownEventType,
    UnknownSchemaVersion,
    decode,
)
from fleet_testing.chaos import SCENARIOS, select
from fleet_testing.chaos.workload import BAD_KINDS, Mix, Workload

ROOT = Path(__file__).resolve().parents[1]
EXPECTED_ERROR = {
    "bad-json": MalformedEvent,
    "wrong-type": UnknownEventType,
    "schema-violation": InvalidEvent,
    "unknown-version": UnknownSchemaVersion,
}


def test_one_message_in_a_hundred_is_malformed_and_each_kind_fails_decoding_as_itself() -> None:
    workload = Workload("t0", seed=1, mix=Mix(malformed=0.01))
    messages = [m for _ in range(400) for m in workload.next()]
    bad = [m for m in messages if m.bad is not None]
    assert [m.bad for m in bad] == list(BAD_KINDS)
    for message in bad:
        assert message.event is None
        with pytest.raises(DecodeError) as caught:
            decode(message.data)
        assert isinstance(caught.value, EXPECTED_ERROR[message.bad]), (message.bad, caught.value)
    for message in messages:
        if message.bad is None:
            assert message.event is not None
            assert decode(message.data).id == message.event.id


def test_bot_events_follow_the_state_machine_and_keys_stay_in_the_scenario() -> None:
    workload = Workload("t1", seed=2, mix=Mix())
    events = [m.event for _ in range(600) for m in workload.next() if m.event is not None]
    bots: dict[str, list[str]] = {}
    for event in events:
        if event.type.startswith("bot."):
            bots.setdefault(event.data.bot_id, []).append(event.type)
            assert event.data.version == len(bots[event.data.bot_id])
        if event.type == "trade.executed":
            assert event.data.bot_id.startswith(workload.bot_prefix)
        if event.type == "market.tick":
            assert event.data.symbol in workload.symbols
    for types in bots.values():
        cycle = ["bot.deployed", "bot.started", "bot.stopped"]
        assert types == ["bot.created", *(cycle * len(types))[: len(types) - 1]]


def test_duplicates_are_the_share_asked_for() -> None:
    workload = Workload("t2", seed=3, mix=Mix(duplicate_same_id=0.05, duplicate_new_id=0.05))
    batches = [workload.next() for _ in range(4000)]
    kinds = Counter(
        "same-id" if b[0].msg_id == b[1].msg_id else "new-id" for b in batches if len(b) == 2
    )
    assert 150 < kinds["same-id"] < 250
    # New-id copies only of fills and bot events (about 60 % of the traffic).
    assert 80 < kinds["new-id"] < 160
    for batch in batches:
        if len(batch) == 2 and batch[0].msg_id != batch[1].msg_id:
            first, copy = batch[0].event, batch[1].event
            assert first is not None
            assert copy is not None
            assert first.type != "market.tick"
            assert first.data == copy.data


def test_unknown_scenario_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown scenario 'nope'") as caught:
        select(["nope"])
    assert all(s.name in str(caught.value) for s in SCENARIOS)
    assert [s.name for s in select(["sigstop", "steady"])] == ["sigstop", "steady"]


def test_workers_and_the_cli_do_not_import_the_fault_suite() -> None:
    probe = (
        "import sys, fleet_runtime.cli, fleet_runtime.worker, trade_recorder.app, "
        "market_ingest.app, bot_lifecycle.app; "
        "print(sorted(m for m in sys.modules if m.startswith('fleet_testing')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_an_unknown_scenario_is_one_line_and_exit_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "fleet_runtime.cli", "chaos", "--scenario", "nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: unknown scenario 'nope' (scenarios: steady, ")
    assert "Traceback" not in proc.stderr
    assert "chaos:" not in proc.stdout  # nothing started

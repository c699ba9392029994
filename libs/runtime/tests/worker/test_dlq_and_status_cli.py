"""`fleet dlq list|show|redrive|purge` and `fleet status` against a real nats-server."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import Result
from nats.js.client import JetStreamContext
from runtime_testkit.events import fill, publish_all
from runtime_testkit.worker import TOPOLOGY, WORKER
from typer.testing import CliRunner

from fleet_events import DLQ_STREAM, Event, encode, subject_for
from fleet_runtime.cli import app
from fleet_runtime.deadletter import DeadLetter, publish_dead_letter
from fleet_runtime.exhausted import advisory_subject
from fleet_testing import Fleet


@pytest.fixture(autouse=True)
def admin_credentials(isolated_fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    """`fleet dlq` and `fleet status` present the admin's seed, as an operator's would."""
    creds = isolated_fleet.nats.env().get("FLEET_NATS_CREDS", "")
    monkeypatch.setenv("FLEET_NATS_CREDS", creds)


async def fleet(*args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, app, list(args))


async def dead_letter(
    js: JetStreamContext, worker: str, seq: int, event: Event[Any] | None = None
) -> None:
    data = encode(event) if event is not None else b"garbage"
    await publish_dead_letter(
        js,
        DeadLetter(
            worker=worker,
            stream="TRADES",
            seq=seq,
            subject=subject_for(event) if event is not None else "trade.executed.bot-9",
            error_class="ValueError" if event is not None else "MalformedEvent",
            error=f"failure number {seq}",
            deliveries=3,
            time=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
            data=data,
            event_id=str(event.id) if event is not None else None,
        ),
    )


async def test_dlq_list_show_redrive_purge(js: JetStreamContext, nats_url: str) -> None:
    a, b = fill(1), fill(2, bot="bot-2")
    await dead_letter(js, WORKER, 10, a)
    await dead_letter(js, "other-worker", 11, b)
    await dead_letter(js, WORKER, 12)

    listed = await fleet("dlq", "list", "--server", nats_url)
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert len(lines) == 4
    assert lines[1].split()[:3] == ["1", WORKER, "trade.executed.bot-1"]
    assert "(TRADES#10)" in lines[1]
    assert "failure number 10" in lines[1]
    assert "MalformedEvent" in lines[3]

    mine = await fleet("dlq", "list", "--worker", WORKER, "--limit", "1", "--server", nats_url)
    assert mine.exit_code == 0
    assert len(mine.output.splitlines()) == 2

    shown = await fleet("dlq", "show", "1", "--server", nats_url)
    assert shown.exit_code == 0, shown.output
    assert f"event id:          {a.id}" in shown.output
    assert "error class:       ValueError" in shown.output
    assert "original event:" in shown.output
    assert '"trade_id": "trade-1"' in shown.output
    garbage = await fleet("dlq", "show", "3", "--server", nats_url)
    assert "not decodable" in garbage.output
    assert "garbage" in garbage.output

    missing = await fleet("dlq", "show", "99", "--server", nats_url)
    assert missing.exit_code == 1
    assert isinstance(missing.exception, Exception)
    assert "no dead letter at DLQ sequence 99" in str(missing.exception)

    nothing = await fleet("dlq", "redrive", "--server", nats_url)
    assert nothing.exit_code == 1
    assert "say which dead letters" in str(nothing.exception)

    redriven = await fleet(
        "dlq", "redrive", "--subject", "trade.executed.bot-2", "--all", "--server", nats_url
    )
    assert redriven.exit_code == 0, redriven.output
    assert "DLQ #2 -> trade.executed.bot-2 (TRADES#1)" in redriven.output
    copy = await js.get_msg("TRADES", 1)
    assert copy.data == encode(b)
    assert (copy.headers or {})["Nats-Msg-Id"] == f"{b.id}:redrive:2"

    purged = await fleet("dlq", "purge", "--worker", WORKER, "--all", "--server", nats_url)
    assert purged.exit_code == 0, purged.output
    assert "deleted 2 dead letters" in purged.output
    assert (await js.stream_info(DLQ_STREAM)).state.messages == 0
    empty = await fleet("dlq", "list", "--server", nats_url)
    assert empty.output.strip() == "no dead letters"


async def test_redrive_by_sequence_and_twice_is_not_stored_twice(
    js: JetStreamContext, nats_url: str
) -> None:
    event = fill(5)
    await dead_letter(js, WORKER, 5, event)
    first = await fleet("dlq", "redrive", "1", "--server", nats_url)
    assert first.exit_code == 0, first.output
    assert (await js.stream_info("TRADES")).state.messages == 1
    again = await fleet("dlq", "redrive", "1", "--server", nats_url)
    assert again.exit_code == 1
    assert "no dead letter at DLQ sequence 1" in str(again.exception)
    assert (await js.stream_info("TRADES")).state.messages == 1


async def test_status_shows_lag_and_dlq_depth(js: JetStreamContext, nats_url: str) -> None:
    await publish_all(js, [fill(n) for n in range(1, 8)])
    await dead_letter(js, WORKER, 3, fill(3))
    await dead_letter(js, "ghost", 4, fill(4))
    result = await fleet("status", "--file", str(TOPOLOGY), "--server", nats_url)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["WORKER", "STREAM", "DURABLE"]
    row = lines[1].split()
    assert row[:7] == [WORKER, "TRADES", WORKER, "7", "0", "0", "1"]
    assert lines[2] == "dead letters of undeclared worker ghost: 1"


async def test_status_shows_given_up_messages_awaiting_their_worker(
    js: JetStreamContext, nats_url: str
) -> None:
    # What the server publishes when it stops redelivering (stored by stream EXHAUSTED).
    for seq in (3, 4):
        advisory = {"stream": "TRADES", "consumer": WORKER, "stream_seq": seq, "deliveries": 3}
        await js.publish(advisory_subject("TRADES", WORKER), json.dumps(advisory).encode())
    result = await fleet("status", "--file", str(TOPOLOGY), "--server", nats_url)
    assert result.exit_code == 0, result.output
    assert (
        f"given up by the server after max_deliver, not yet dead-lettered: {WORKER}: 2"
        in result.output
    )


async def test_commands_without_a_server_say_so_plainly() -> None:
    result = await fleet("dlq", "list", "--server", "nats://127.0.0.1:1")
    assert result.exit_code == 1
    assert "cannot connect to NATS at nats://127.0.0.1:1" in str(result.exception)

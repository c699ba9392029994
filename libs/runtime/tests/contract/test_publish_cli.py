"""`fleet publish` against a real nats-server with the repository's streams.yaml applied."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.api import RawStreamMsg
from runtime_testkit.cli import REPO, FleetRunner

from fleet_events import TradeExecuted, decode
from fleet_runtime.topology import apply, load_topology

FILL: dict[str, Any] = {
    "trade_id": "t-1",
    "order_id": "o-1",
    "bot_id": "bot-1",
    "user_id": "u-1",
    "symbol": "BTCUSDT",
    "side": "BUY",
    "quantity": "0.5",
    "price": "67000.10",
    "fee": "0.03",
    "fee_currency": "USDT",
    "executed_at": "2026-01-02T03:04:05Z",
}
LINE = re.compile(
    r"^(?P<subject>\S+)  id=(?P<id>\S+)  stream=(?P<stream>\S+)  seq=(?P<seq>\d+)  (?P<state>.+)$"
)


async def _apply_streams(url: str) -> None:
    nc = await nats.connect(url)
    try:
        await apply(nc.jetstream(), load_topology(REPO / "streams.yaml"))
    finally:
        await nc.close()


async def _stored(url: str, stream: str) -> list[RawStreamMsg]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        first, last = info.state.first_seq, info.state.last_seq
        return [await js.get_msg(stream, seq) for seq in range(first, last + 1)] if last else []
    finally:
        await nc.close()


def stored(url: str, stream: str) -> list[RawStreamMsg]:
    """Every message the stream holds, read back from the server."""
    return asyncio.run(_stored(url, stream))


@pytest.fixture
def server(nats_url: str) -> str:
    """A private server with the streams of streams.yaml."""
    asyncio.run(_apply_streams(nats_url))
    return nats_url


def published(out: str) -> list[dict[str, str]]:
    matches = [LINE.match(line) for line in out.splitlines()]
    return [m.groupdict() for m in matches if m]


def test_publish_validates_sets_the_id_and_reports_the_sequence(
    fleet_cli: FleetRunner, server: str
) -> None:
    result = fleet_cli("publish", "trade.executed", "--data", json.dumps(FILL), "-s", server)

    assert result.code == 0, result.err
    (line,) = published(result.out)
    assert line["subject"] == "trade.executed.bot-1"
    assert (line["stream"], line["seq"], line["state"]) == ("TRADES", "1", "stored")
    (msg,) = stored(server, "TRADES")
    assert msg.subject == "trade.executed.bot-1"
    assert msg.headers is not None
    assert msg.headers["Nats-Msg-Id"] == line["id"]
    event = decode(msg.data or b"")
    assert str(event.id) == line["id"]
    assert isinstance(event.data, TradeExecuted)
    assert str(event.data.price) == "67000.10"
    assert (event.source, event.key) == ("fleet-cli", "bot-1")


def test_the_same_id_twice_is_stored_once(
    fleet_cli: FleetRunner, server: str, tmp_path: Path
) -> None:
    data = tmp_path / "fill.json"
    data.write_text(json.dumps(FILL))
    event_id = "01938f8e-7a00-7000-8000-000000000001"
    args = ("publish", "trade.executed", "--data", f"@{data}", "--id", event_id, "-s", server)

    first, second = fleet_cli(*args), fleet_cli(*args)

    assert first.code == second.code == 0, first.err + second.err
    assert published(first.out)[0]["state"] == "stored"
    again = published(second.out)[0]
    assert again["state"] == "duplicate (already stored, not stored again)"
    assert (again["id"], again["seq"]) == (event_id, "1")
    assert len(stored(server, "TRADES")) == 1


def test_count_and_rate(fleet_cli: FleetRunner, server: str) -> None:
    tick = {
        "price": "101.5",
        "quantity": "2",
        "timestamp": "2026-01-02T03:04:05Z",
        "is_buyer_maker": False,
    }
    begun = time.monotonic()
    result = fleet_cli(
        "publish",
        "market.tick.ETHUSDT",
        "--data",
        json.dumps(tick),
        "--count",
        "4",
        "--rate",
        "20",
        "-s",
        server,
    )
    elapsed = time.monotonic() - begun

    assert result.code == 0, result.err
    lines = published(result.out)
    assert [line["seq"] for line in lines] == ["1", "2", "3", "4"]
    assert len({line["id"] for line in lines}) == 4
    assert result.out.splitlines()[-1] == "published 4: 4 stored, 0 duplicates"
    # Four events at 20/s: the last one leaves 3/20 s after the first.
    assert elapsed >= 0.15
    messages = stored(server, "MARKET")
    assert [m.subject for m in messages] == ["market.tick.ETHUSDT"] * 4
    # The symbol came from the subject.
    assert {decode(m.data or b"").data.symbol for m in messages} == {"ETHUSDT"}


@pytest.mark.parametrize(
    ("args", "error", "fix"),
    [
        (
            ("trade.exploded", json.dumps(FILL)),
            "error: type: unknown event type or subject 'trade.exploded'",
            "fix: use one of bot.created, bot.deleted, ",
        ),
        (
            ("trade.executed", json.dumps({k: v for k, v in FILL.items() if k != "price"})),
            "error: invalid trade.executed event: data.price: Field required",
            "fix: correct data.price (the contract: docs/asyncapi.yaml, message TradeExecuted)",
        ),
        (
            ("trade.executed", json.dumps({**FILL, "price": 67000.1})),
            "error: invalid trade.executed event: data.price: must be a decimal string, e.g. "
            '"101.25", not a JSON number (got 67000.1)',
            "fix: correct data.price",
        ),
        (
            ("trade.executed", json.dumps({**FILL, "venue": "x"})),
            "error: invalid trade.executed event: data.venue: Extra inputs are not permitted",
            "fix: correct data.venue",
        ),
        (
            ("trade.executed.bot-2", json.dumps(FILL)),
            "error: subject trade.executed.bot-2 does not match the event, whose subject is "
            "trade.executed.bot-1 (from data.bot_id)",
            "fix: publish to trade.executed.bot-1, or give the event type alone",
        ),
        (
            ("trade.executed", "{not json"),
            "error: --data: not valid JSON: ",
            "fix: quote the JSON for the shell",
        ),
        (
            ("trade.>", json.dumps(FILL)),
            "error: 'trade.>' is a wildcard subject",
            "fix: give the event type",
        ),
    ],
)
def test_bad_input_is_one_line_naming_the_field(
    fleet_cli: FleetRunner, server: str, args: tuple[str, str], error: str, fix: str
) -> None:
    target, data = args
    result = fleet_cli("publish", target, "--data", data, "-s", server)

    assert result.code == 2
    lines = result.err.splitlines()
    assert len(lines) == 2, result.err
    assert lines[0].startswith(error), lines[0]
    assert lines[1].startswith(fix), lines[1]
    assert "Traceback" not in result.err
    assert stored(server, "TRADES") == []


def test_a_subject_no_stream_stores_is_refused(fleet_cli: FleetRunner, nats_url: str) -> None:
    # Streams not applied: nothing would store the event.
    result = fleet_cli("publish", "trade.executed", "--data", json.dumps(FILL), "-s", nats_url)

    assert result.code == 2
    assert result.err.splitlines() == [
        "error: no stream stores subject trade.executed.bot-1",
        "fix: run `fleet topology apply` against this server (streams.yaml declares the streams)",
    ]


def test_the_server_comes_from_fleet_nats_url(
    fleet_cli: FleetRunner, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEET_NATS_URL", server)

    result = fleet_cli("publish", "trade.executed", "--data", json.dumps(FILL))

    assert result.code == 0, result.err
    assert published(result.out)[0]["stream"] == "TRADES"
    assert len(stored(server, "TRADES")) == 1

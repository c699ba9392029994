"""docs/asyncapi.yaml: what it holds, that it is current, and `fleet contract generate|check`."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import yaml
from runtime_testkit.cli import REPO, FleetRunner

from fleet_events import EVENT_TYPES, subject_pattern
from fleet_runtime.contract import build_document, channel_id, current_inputs, render

COMMITTED = REPO / "docs" / "asyncapi.yaml"
STREAMS = REPO / "streams.yaml"


def document() -> dict[str, Any]:
    return build_document(current_inputs(STREAMS))


def resolve(doc: dict[str, Any], ref: str) -> Any:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_committed_document_is_what_the_registry_generates() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == render(document())


def test_rendering_is_deterministic_and_sorted() -> None:
    first, second = render(document()), render(document())
    assert first == second
    doc = yaml.safe_load(first)
    for section in (doc["channels"], doc["operations"], doc["components"]["schemas"]):
        assert list(section) == sorted(section)


def test_every_event_type_has_a_channel_message_and_versioned_payload() -> None:
    doc = document()
    assert doc["asyncapi"] == "3.0.0"
    for event_type, payload in EVENT_TYPES.items():
        channel = doc["channels"][channel_id(event_type)]
        assert channel["address"] == subject_pattern(payload)
        assert list(channel["parameters"]) == list(payload.subject_fields)
        (ref,) = [m["$ref"] for m in channel["messages"].values()]
        message = resolve(doc, ref)
        assert message["name"] == event_type
        assert message["x-fleet-schema-version"] == payload.schema_version
        body = resolve(doc, message["payload"]["$ref"])
        assert body["properties"]["type"]["const"] == event_type
        assert body["properties"]["schema_version"]["const"] == payload.schema_version
        # Publishers must send the id (it is the Nats-Msg-Id) and the time.
        assert {"id", "time", "type", "schema_version", "key", "data"} <= set(body["required"])
        headers = resolve(doc, message["headers"]["$ref"])
        assert headers["required"] == ["Nats-Msg-Id"]
    executed = resolve(doc, "#/components/messages/TradeExecuted")
    assert executed["x-fleet-readable-versions"] == [1, 2]
    interval = doc["channels"]["marketCandle"]["parameters"]["interval"]
    assert interval["enum"] == ["1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w"]
    assert interval["location"] == "$message.payload#/data/interval"


def test_money_is_a_decimal_string_with_a_pattern() -> None:
    doc = document()
    fill = doc["components"]["schemas"]["TradeExecuted"]["properties"]
    for name in ("price", "quantity", "fee"):
        assert fill[name]["type"] == "string"
        pattern = re.compile(fill[name]["pattern"])
        assert pattern.match("101.25")
        assert pattern.match("-0.5")
        assert not pattern.match("1,5")
        assert not pattern.match("")
    assert fill["executed_at"] == {"format": "date-time", "title": "Executed At", "type": "string"}


def test_streams_consumers_and_workers_are_in_the_document() -> None:
    doc = document()
    assert list(doc["x-fleet-streams"]) == ["BOTS", "DLQ", "EXHAUSTED", "MARKET", "OPS", "TRADES"]
    assert doc["x-fleet-streams"]["TRADES"]["duplicate_window"] == "5m"
    ingest = next(c for c in doc["x-fleet-consumers"] if c["worker"] == "market-ingest")
    assert ingest["filter_subjects"] == ["market.tick.>"]
    assert ingest["durables"] == ["market-ingest"]
    assert doc["channels"]["tradeExecuted"]["x-fleet-stream"] == "TRADES"

    workers = doc["x-fleet-workers"]
    assert workers["market-ingest"]["receives"] == ["marketTick"]
    assert workers["market-ingest"]["sends"] == ["deadLetter", "marketCandle"]
    assert workers["backup-runner"]["receives"] == ["opsBackupRequested"]
    assert workers["backup-runner"]["sends"] == [
        "deadLetter",
        "opsBackupCompleted",
        "opsBackupFailed",
    ]
    assert workers["trade-recorder"]["receives"] == [
        "tradeCompleted",
        "tradeExecuted",
        "tradeFailed",
    ]
    projector = workers["analytics-projector"]["receives"]
    assert "marketCandle" in projector
    assert "marketTick" not in projector
    assert "botCreated" in projector

    operations = doc["operations"]
    receive = operations["trade-recorder-receives-tradeExecuted"]
    assert receive["action"] == "receive"
    assert receive["x-fleet-durables"] == ["trade-recorder"]
    assert resolve(doc, receive["messages"][0]["$ref"]) == {
        "$ref": "#/components/messages/TradeExecuted"
    }
    assert operations["market-ingest-sends-marketCandle"]["action"] == "send"
    # Candles come from market-ingest only; ticks and fills from services outside the fleet.
    assert "publishers-send-marketCandle" not in operations
    assert operations["publishers-send-marketTick"]["action"] == "send"
    dead = doc["components"]["schemas"]["DeadLetterHeaders"]
    assert {"Nats-Msg-Id", "Fleet-Dlq-Error", "Fleet-Dlq-Subject"} <= set(dead["required"])


def test_check_passes_on_the_committed_file(fleet_cli: FleetRunner) -> None:
    result = fleet_cli("contract", "check")
    assert result.code == 0, result.err
    assert "docs/asyncapi.yaml: up to date and compatible (14 event types, 5 workers)" in (
        result.out
    )


def test_check_names_what_is_stale(fleet_cli: FleetRunner, tmp_path: Path) -> None:
    stale = tmp_path / "asyncapi.yaml"
    doc = yaml.safe_load(COMMITTED.read_text())
    doc["channels"]["tradeExecuted"]["description"] = "edited by hand"
    del doc["x-fleet-streams"]["OPS"]
    stale.write_text(yaml.safe_dump(doc, sort_keys=False))

    result = fleet_cli("contract", "check", "--doc", str(stale))

    assert result.code == 1
    assert "is out of date with the event registry and streams.yaml: 2 differences: " in (
        result.err
    )
    assert "channels.tradeExecuted.description" in result.err
    assert "x-fleet-streams.OPS (added)" in result.err
    assert f"fix: run `fleet contract generate` and commit {stale}" in result.err


def test_check_of_a_missing_file_is_a_user_error(fleet_cli: FleetRunner, tmp_path: Path) -> None:
    result = fleet_cli("contract", "check", "--doc", str(tmp_path / "nope.yaml"))
    assert result.code == 2
    assert result.err.splitlines() == [
        f"error: {tmp_path / 'nope.yaml'} does not exist",
        "fix: run `fleet contract generate` and commit the file",
    ]


def test_generate_writes_the_file_once(fleet_cli: FleetRunner, tmp_path: Path) -> None:
    target = tmp_path / "docs" / "asyncapi.yaml"
    first = fleet_cli("contract", "generate", "--doc", str(target))
    assert first.code == 0, first.err
    assert first.out.strip() == f"wrote {target} (14 event types, 5 workers)"
    assert target.read_text() == COMMITTED.read_text()

    again = fleet_cli("contract", "generate", "--doc", str(target))
    assert again.out.strip() == f"{target}: unchanged (14 event types, 5 workers)"


def test_generate_replaces_a_stale_compatible_file(fleet_cli: FleetRunner, tmp_path: Path) -> None:
    target = tmp_path / "asyncapi.yaml"
    shutil.copy(COMMITTED, target)
    target.write_text(target.read_text().replace("title: Tradefleet events", "title: Old"))

    result = fleet_cli("contract", "generate", "--doc", str(target))

    assert result.code == 0, result.err
    assert target.read_text() == COMMITTED.read_text()


def test_publishing_guide_states_the_duplicate_windows_of_streams_yaml() -> None:
    guide = (REPO / "docs" / "publishing.md").read_text()
    rows = re.findall(r"^\| (\w+) \| `[^`]+` \| (\d+) (minutes|seconds) \|$", guide, re.M)
    stated = {name: int(n) * (60 if unit == "minutes" else 1) for name, n, unit in rows}
    topology = current_inputs(STREAMS).topology
    declared = {
        name: spec.duplicate_window
        for name, spec in topology.streams.items()
        if name in ("BOTS", "TRADES", "MARKET", "OPS")
    }
    assert stated == declared

"""streams.yaml validation: every problem, its line:col and fix; the shipped file is valid."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleet_runtime.cli import app
from fleet_runtime.topology import Problem, TopologyInvalid, load_topology, parse_topology

REPO = Path(__file__).resolve().parents[4]
SHIPPED = REPO / "streams.yaml"


def problems_of(text: str) -> list[Problem]:
    topology, problems = parse_topology(text, "t.yaml")
    assert topology is None
    return problems


def only(problems: list[Problem], fragment: str) -> Problem:
    found = [p for p in problems if fragment in p.message]
    assert len(found) == 1, [p.render() for p in problems]
    return found[0]


def test_unknown_key_names_the_key_its_line_and_the_close_match() -> None:
    text = """\
streams:
  BOTS:
    subjects: ["bot.>"]
    max_agee: 72h
"""
    problem = only(problems_of(text), "unknown key `max_agee`")
    assert (problem.line, problem.column) == (4, 5)
    assert problem.dotted == "streams.BOTS.max_agee"
    assert "did you mean `max_age`?" in problem.fix


def test_unknown_top_level_and_consumer_keys() -> None:
    text = """\
streams:
  BOTS: {subjects: ["bot.>"]}
consumer:
  - worker: a
"""
    problem = only(problems_of(text), "unknown key `consumer`")
    assert problem.line == 3
    assert "did you mean `consumers`?" in problem.fix
    text = """\
streams:
  BOTS: {subjects: ["bot.>"]}
consumers:
  - worker: bot-lifecycle
    stream: BOTS
    ack_wiat: 30s
"""
    problem = only(problems_of(text), "unknown key `ack_wiat`")
    assert (problem.line, problem.column) == (6, 5)
    assert "did you mean `ack_wait`?" in problem.fix


def test_bad_duration_and_bad_size_point_at_the_value() -> None:
    text = """\
streams:
  BOTS:
    subjects: ["bot.>"]
    max_age: 3 days
    max_bytes: 12 gigs
"""
    problems = problems_of(text)
    duration = only(problems, "expected a duration")
    assert (duration.line, duration.column) == (4, 14)
    assert "'3 days'" in duration.message
    assert duration.fix == "write a duration like 30s, 5m, 72h or 365d"
    size = only(problems, "expected a size")
    assert (size.line, size.column) == (5, 16)
    assert size.fix == "write a size like 512MiB, 10GiB or unlimited"


def test_overlapping_stream_subjects() -> None:
    text = """\
streams:
  TRADES:
    subjects: ["trade.>"]
  FILLS:
    subjects: ["orders.>", "trade.executed.*"]
"""
    problem = only(problems_of(text), "overlaps")
    assert problem.line == 5
    assert problem.dotted == "streams.FILLS.subjects[1]"
    assert "'trade.executed.*' of stream FILLS overlaps 'trade.>' of stream TRADES" in (
        problem.message
    )


def test_consumer_filter_outside_its_stream_names_the_stream_that_holds_it() -> None:
    text = """\
streams:
  TRADES: {subjects: ["trade.>"]}
  MARKET: {subjects: ["market.>"]}
consumers:
  - worker: analytics-projector
    stream: TRADES
    filter_subjects: ["trade.>", "market.candle.>"]
"""
    problem = only(problems_of(text), "is not in stream TRADES")
    assert problem.line == 7
    assert problem.dotted == "consumers[0].filter_subjects[1]"
    assert "stream MARKET holds it" in problem.message
    assert problem.fix == "move it to a consumer with `stream: MARKET`"


def test_worker_subscribing_to_a_subject_no_stream_captures() -> None:
    text = """\
streams:
  TRADES: {subjects: ["trade.>"]}
consumers:
  - worker: trade-recorder
    stream: TRADES
    filter_subjects:
      - "trades.executed.*"
"""
    problem = only(problems_of(text), "no stream captures")
    assert (problem.line, problem.column) == (7, 9)
    assert "worker trade-recorder subscribes to 'trades.executed.*'" in problem.message


def test_backoff_longer_than_max_deliver() -> None:
    text = """\
streams:
  TRADES: {subjects: ["trade.>"]}
consumers:
  - worker: trade-recorder
    stream: TRADES
    max_deliver: 2
    backoff: [1s, 5s, 30s]
"""
    problem = only(problems_of(text), "backoff has 3 steps but max_deliver is 2")
    assert problem.line == 7
    assert "raise max_deliver to at least 3" in problem.fix


def test_all_problems_are_reported_at_once_in_line_order(tmp_path: Path) -> None:
    text = """\
streams:
  BOTS:
    subjects: ["bot.>"]
    max_age: forever
  TRADES:
    subjects: ["trade.>"]
    max_msg_size: huge
    colour: red
consumers:
  - worker: trade-recorder
    stream: TRADES
    filter_subjects: ["bot.>"]
  - worker: x
    stream: NOPE
    backoff: [1s, 2s]
    max_deliver: 1
"""
    path = tmp_path / "streams.yaml"
    path.write_text(text)
    with pytest.raises(TopologyInvalid) as caught:
        load_topology(path)
    lines = [p.line for p in caught.value.problems]
    assert lines == [4, 7, 8, 14, 15]
    message = str(caught.value)
    assert message.startswith(f"{path} has 5 problems:")
    assert f"{path}:14:13: consumers[1].stream: stream 'NOPE' is not declared" in message


def test_yaml_syntax_error_has_a_position() -> None:
    problems = problems_of("streams:\n  BOTS: {subjects: [bot.>\n")
    assert len(problems) == 1
    assert problems[0].message.startswith("not valid YAML")
    assert problems[0].line == 3


def test_partition_count_must_match_the_stream() -> None:
    text = """\
streams:
  TRADES:
    subjects: ["trade.>"]
    partition: {subjects: "trade.*.*", count: 4}
consumers:
  - worker: trade-recorder
    stream: TRADES
    filter_subjects: ["trade.*.*"]
    partitions: 3
"""
    problem = only(problems_of(text), "partitions: 3 but stream TRADES has 4 partitions")
    assert problem.line == 9


def test_shipped_file_is_valid_and_declares_every_worker() -> None:
    topology = load_topology(SHIPPED)
    assert set(topology.streams) == {"BOTS", "TRADES", "MARKET", "OPS", "DLQ", "EXHAUSTED"}
    assert topology.workers() == [
        "bot-lifecycle",
        "trade-recorder",
        "market-ingest",
        "analytics-projector",
        "backup-runner",
    ]
    projector = topology.consumers_for("analytics-projector")
    assert [spec.stream for spec in projector] == ["TRADES", "MARKET", "BOTS"]
    assert {spec.name for spec in projector} == {"analytics-projector"}
    config = topology.durables_for("trade-recorder")[0].consumer_config()
    assert config.durable_name == "trade-recorder"
    assert config.filter_subjects == ["trade.>"]
    assert config.max_deliver == 10
    assert config.backoff == [2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0]
    dlq = topology.streams["DLQ"]
    assert dlq.discard == "new"
    assert dlq.max_age == 365 * 86400


def test_cli_validate_ok_and_schema() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["topology", "validate", "--file", str(SHIPPED)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        f"{SHIPPED}: valid: 6 streams, 7 consumer declarations (7 durables) for 5 workers"
    )
    result = runner.invoke(app, ["topology", "schema"])
    schema = json.loads(result.output)
    stream = schema["$defs"]["StreamSpec"]["properties"]
    assert "Oldest message kept" in stream["max_age"]["description"]
    assert schema["$defs"]["StreamSpec"]["additionalProperties"] is False


def test_cli_validate_prints_every_problem_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "streams.yaml"
    path.write_text('streams:\n  BOTS:\n    subjects: ["bot.>"]\n    max_age: 3x\n    foo: 1\n')
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from fleet_runtime.cli import main; main()",
            "topology",
            "validate",
            "--file",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert f"error: {path} has 2 problems:" in result.stderr
    assert f"{path}:4:14: streams.BOTS.max_age: expected a duration" in result.stderr
    assert f"{path}:5:5: streams.BOTS.foo: unknown key `foo`" in result.stderr
    assert "Traceback" not in result.stderr


def test_ack_wait_overlapping_filters_and_duplicate_durables() -> None:
    text = """\
streams:
  TRADES: {subjects: ["trade.>"]}
consumers:
  - worker: trade-recorder
    stream: TRADES
    filter_subjects: ["trade.>", "trade.executed.*"]
    ack_wait: 10s
    backoff: [30s, 1m]
  - worker: trade-recorder
    stream: TRADES
"""
    problems = problems_of(text)
    overlap = only(problems, "overlaps filter 'trade.>'")
    assert (overlap.line, overlap.dotted) == (6, "consumers[0].filter_subjects[1]")
    ack = only(problems, "ack_wait differs from the first backoff step")
    assert ack.line == 7
    twice = only(problems, "durable 'trade-recorder' on stream TRADES is declared twice")
    assert twice.line == 9


def test_duplicate_yaml_key_is_reported() -> None:
    text = 'streams:\n  BOTS: {subjects: ["bot.>"]}\n  BOTS: {subjects: ["bot.>"]}\n'
    problem = only(problems_of(text), "key `BOTS` is written twice")
    assert (problem.line, problem.column) == (3, 3)

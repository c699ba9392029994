"""plan/apply against a real nats-server 2.15: create, no-op, field diffs, refusals, recreate."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, StreamConfig

from fleet_runtime.topology import (
    Action,
    Plan,
    RecreateRefused,
    Topology,
    apply,
    load_topology,
    parse_topology,
    plan,
)

SHIPPED = Path(__file__).resolve().parents[4] / "streams.yaml"

BASE = (Path(__file__).parent / "base.yaml").read_text()


def topo(text: str) -> Topology:
    topology, problems = parse_topology(text)
    assert topology is not None, [p.render() for p in problems]
    return topology


@pytest.fixture
async def js(nats_url: str) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(nats_url)
    try:
        yield nc.jetstream()
    finally:
        await nc.close()


def actions(result: Plan) -> dict[str, str]:
    return {change.label: change.action.value for change in result.changes}


async def test_apply_on_empty_server_then_second_apply_is_a_noop(js: JetStreamContext) -> None:
    topology = topo(BASE)
    first = await apply(js, topology)
    assert actions(first) == {
        "stream TRADES": "create",
        "consumer TRADES/trade-recorder": "create",
        "stream OPS": "create",
        "consumer OPS/backup-runner": "create",
    }
    info = await js.stream_info("TRADES")
    assert info.config.max_age == 72 * 3600
    assert info.config.max_bytes == 512 * 1024**2
    assert info.config.deny_purge is True
    consumer = await js.consumer_info("TRADES", "trade-recorder")
    assert consumer.config.backoff == [1.0, 5.0, 30.0]
    assert consumer.config.max_deliver == 5

    second = await apply(js, topology)
    assert set(actions(second).values()) == {"unchanged"}
    assert not second.differs
    assert all(change.fields == () for change in second.changes)
    again = await plan(js, topology)
    assert not again.differs


async def test_plan_after_an_edit_shows_the_exact_field_diff(js: JetStreamContext) -> None:
    await apply(js, topo(BASE))
    edited = topo(
        BASE.replace("max_age: 72h", "max_age: 96h")
        .replace("max_deliver: 5", "max_deliver: 8")
        .replace("max_bytes: 512MiB", "max_bytes: 1GiB")
    )
    result = await plan(js, edited)
    by_label = {change.label: change for change in result.changes}
    stream = by_label["stream TRADES"]
    assert stream.action is Action.UPDATE
    assert [f.render() for f in stream.fields] == [
        "max_age: 72h -> 96h",
        "max_bytes: 512MiB -> 1GiB",
    ]
    consumer = by_label["consumer TRADES/trade-recorder"]
    assert consumer.action is Action.UPDATE
    assert [f.render() for f in consumer.fields] == ["max_deliver: 5 -> 8"]
    assert by_label["stream OPS"].action is Action.UNCHANGED

    await apply(js, edited)
    assert (await js.stream_info("TRADES")).config.max_age == 96 * 3600
    assert (await js.consumer_info("TRADES", "trade-recorder")).config.max_deliver == 8
    assert not (await plan(js, edited)).differs


async def test_fields_left_out_of_the_file_are_not_drift(js: JetStreamContext) -> None:
    topology = topo(BASE)
    await apply(js, topology)
    # The file does not set max_msgs for OPS: an out-of-band value there is not ours.
    live = (await js.stream_info("OPS")).config
    await js.update_stream(live.evolve(max_msgs=1000, compression="s2"))
    assert not (await plan(js, topology)).differs
    await apply(js, topology)
    assert (await js.stream_info("OPS")).config.max_msgs == 1000


async def test_storage_change_is_refused_and_keeps_the_data(js: JetStreamContext) -> None:
    await apply(js, topo(BASE))
    for n in range(3):
        await js.publish(f"trade.executed.bot{n}", b"{}")
    memory = topo(BASE.replace("storage: file", "storage: memory"))

    result = await plan(js, memory)
    change = next(c for c in result.changes if c.label == "stream TRADES")
    assert change.action is Action.RECREATE
    assert change.fields[0].render() == (
        "storage: file -> memory  (requires recreate: the server cannot change a stream's "
        "storage type)"
    )
    with pytest.raises(RecreateRefused) as refused:
        await apply(js, memory)
    message = str(refused.value)
    assert "stream TRADES: storage: file -> memory" in message
    assert "sources TRADES" in message
    assert "DELETES TRADES and its 3 messages" in message
    info = await js.stream_info("TRADES")
    assert info.state.messages == 3
    assert info.config.storage == "file"


async def test_allow_recreate_deletes_and_recreates(js: JetStreamContext) -> None:
    await apply(js, topo(BASE))
    await js.publish("trade.executed.bot1", b"{}")
    memory = topo(BASE.replace("storage: file", "storage: memory"))
    done = await apply(js, memory, allow_recreate=True)
    assert actions(done)["stream TRADES"] == "requires-recreate"
    # The stream came back empty, so its consumer was created again.
    assert actions(done)["consumer TRADES/trade-recorder"] == "create"
    info = await js.stream_info("TRADES")
    assert info.config.storage == "memory"
    assert info.state.messages == 0
    assert (await js.consumer_info("TRADES", "trade-recorder")).config.max_deliver == 5
    assert not (await plan(js, memory)).differs


async def test_consumer_policy_change_is_refused_then_recreated(js: JetStreamContext) -> None:
    await apply(js, topo(BASE))
    changed = topo(BASE.replace("ack_policy: explicit", "ack_policy: all"))
    with pytest.raises(RecreateRefused) as refused:
        await apply(js, changed)
    assert "consumer TRADES/trade-recorder: ack_policy: explicit -> all" in str(refused.value)
    assert "the server cannot update a consumer's ack policy" in str(refused.value)
    assert (await js.consumer_info("TRADES", "trade-recorder")).config.ack_policy == "explicit"
    await apply(js, changed, allow_recreate=True)
    assert (await js.consumer_info("TRADES", "trade-recorder")).config.ack_policy == "all"


async def test_extras_are_kept_unless_prune(js: JetStreamContext) -> None:
    topology = topo(BASE)
    await apply(js, topology)
    await js.add_stream(StreamConfig(name="SCRATCH", subjects=["scratch.>"]))
    await js.add_consumer("TRADES", ConsumerConfig(durable_name="someone-else"))
    result = await apply(js, topology)
    assert actions(result)["stream SCRATCH"] == "extra"
    assert actions(result)["consumer TRADES/someone-else"] == "extra"
    assert (await js.stream_info("SCRATCH")).config.name == "SCRATCH"

    pruned = await apply(js, topology, prune=True)
    assert actions(pruned)["stream SCRATCH"] == "delete"
    assert actions(pruned)["consumer TRADES/someone-else"] == "delete"
    names = {info.config.name for info in await js.streams_info()}
    assert names == {"TRADES", "OPS"}
    durables = {info.name for info in await js.consumers_info("TRADES")}
    assert durables == {"trade-recorder"}


async def test_partitioned_stream_gets_one_durable_per_partition(js: JetStreamContext) -> None:
    text = """\
streams:
  TRADES:
    subjects: ["trade.>"]
    partition: {subjects: "trade.*.*", count: 3}
consumers:
  - worker: trade-recorder
    stream: TRADES
    filter_subjects: ["trade.*.*"]
    partitions: 3
"""
    topology = topo(text)
    assert topology.consumers[0].durable_names() == [
        "trade-recorder-p0",
        "trade-recorder-p1",
        "trade-recorder-p2",
    ]
    await apply(js, topology)
    info = await js.stream_info("TRADES")
    assert info.config.subject_transform is not None
    assert info.config.subject_transform.dest == (
        "trade.{{wildcard(1)}}.{{wildcard(2)}}.{{partition(3,2)}}"
    )
    for n in range(12):
        await js.publish(f"trade.executed.bot{n % 4}", b"{}")
    pending = 0
    for durable in topology.durables_for("trade-recorder"):
        consumer = await js.consumer_info("TRADES", durable.name)
        assert consumer.config.filter_subjects == [f"trade.*.*.{durable.partition}"]
        pending += consumer.num_pending or 0
    # Every message lands in exactly one partition.
    assert pending == 12
    assert not (await plan(js, topology)).differs


async def test_shipped_file_is_accepted_by_the_server(js: JetStreamContext) -> None:
    topology = load_topology(SHIPPED)
    done = await apply(js, topology)
    assert set(actions(done).values()) == {"create"}
    assert len(done.changes) == 6 + 7
    assert not (await plan(js, topology)).differs
    for durable in topology.durables():
        info = await js.consumer_info(durable.stream, durable.name)
        assert info.config.filter_subjects == durable.spec.filter_subjects

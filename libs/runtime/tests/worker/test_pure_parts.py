"""Pure parts of the consume loop: ack subjects, retry delays, checkpoint filtering."""

from __future__ import annotations

from typing import Any, cast

import pytest
from nats.aio.msg import Msg
from runtime_testkit.events import fill

from fleet_runtime.consume import ConsumerBinding, ack_position
from fleet_runtime.delivery import Batch, Delivery
from fleet_runtime.exhausted import Exhausted, advisory_subject, reason


def test_ack_position_reads_the_v1_ack_subject() -> None:
    assert ack_position("$JS.ACK.TRADES.trade-recorder.3.1042.977.1795318965623882695.12") == (
        "TRADES",
        1042,
        3,
    )


def test_ack_position_reads_the_v2_ack_subject_with_domain_and_account() -> None:
    reply = "$JS.ACK.hub.ACCHASH.TRADES.trade-recorder.1.77.70.1795318965623882695.0.rnd"
    assert ack_position(reply) == ("TRADES", 77, 1)


def binding(ack_wait: float = 30.0, backoff: tuple[float, ...] = ()) -> ConsumerBinding:
    return ConsumerBinding("TRADES", "w", True, ack_wait, 5, backoff)


@pytest.mark.parametrize(
    ("attempt", "expected"), [(1, 1.0), (2, 5.0), (3, 30.0), (4, 30.0), (9, 30.0)]
)
def test_retry_delay_follows_backoff_and_reuses_its_last_value(
    attempt: int, expected: float
) -> None:
    assert binding(backoff=(1.0, 5.0, 30.0)).retry_delay(attempt) == expected


def test_retry_delay_without_backoff_is_ack_wait() -> None:
    assert binding(ack_wait=12.0).retry_delay(1) == 12.0
    assert binding(ack_wait=12.0).retry_delay(4) == 12.0


def test_shortest_ack_wait_counts_backoff() -> None:
    assert binding(ack_wait=30.0, backoff=(2.0, 10.0)).shortest_ack_wait_s == 2.0
    assert binding(ack_wait=7.0).shortest_ack_wait_s == 7.0


def delivery(seq: int) -> Delivery[Any]:
    msg = Msg(_client=cast(Any, None), subject="trade.executed.bot-1", data=b"")
    return Delivery(fill(seq), "trade.executed.bot-1", "TRADES", seq, 1, msg)


def test_batch_after_keeps_only_events_past_the_checkpoint() -> None:
    batch: Batch[Any] = Batch([delivery(s) for s in (4, 5, 6, 7)], "w")
    assert [d.stream_seq for d in batch.after(5)] == [6, 7]
    assert batch.after(5).checkpoint == "w"
    assert batch.after(5).last_seq == 7
    assert len(batch.after(0)) == 4
    assert len(batch.after(7)) == 0
    assert len(batch.after(100)) == 0


def test_a_max_deliveries_advisory_is_read_as_the_server_writes_it() -> None:
    body = (
        b'{"type":"io.nats.jetstream.advisory.v1.max_deliver","id":"x","timestamp":'
        b'"2026-12-01T10:00:00Z","stream":"TRADES","consumer":"trade-recorder-p1",'
        b'"stream_seq":42,"deliveries":6}'
    )
    item = Exhausted.parse(7, body)
    assert item == Exhausted(7, "TRADES", "trade-recorder-p1", 42, 6)
    assert "after 6 deliveries" in reason(item)
    assert advisory_subject("TRADES", "trade-recorder-p1") == (
        "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.TRADES.trade-recorder-p1"
    )
    with pytest.raises(KeyError):
        Exhausted.parse(8, b'{"stream":"TRADES"}')

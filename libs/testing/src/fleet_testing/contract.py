"""The store contract suite: what every store adapter of a worker must do, run on a real server.

Subclass ``StoreContract`` in an adapter's tests and provide the ``contract_store``
fixture (a fresh, empty store) and, when the adapter does not take fills, ``make_event``::

    class TestPostgresTradeStore(StoreContract):
        @pytest.fixture
        async def contract_store(self, postgres_database): ...

The adapter is driven directly, as the runtime would: batches in stream order, each
carrying the checkpoint name it advances. See docs/worker-contract.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol, cast
from uuid import UUID

import pytest
from nats.aio.msg import Msg

from fleet_events import Event, Side, TradeExecuted, new_event, subject_for
from fleet_runtime.delivery import Batch, Delivery

CHECKPOINT = "contract-consumer"


class ContractStore(Protocol):
    """What the suite needs from an adapter (thin test hooks around its real write path)."""

    async def apply(self, batch: Batch[Any]) -> None:
        """Apply a batch exactly as the worker's handler does."""

    async def apply_and_crash(self, batch: Batch[Any]) -> None:
        """Write the batch's effects, then raise before the transaction commits."""

    async def effects(self) -> Mapping[UUID, int]:
        """How many effects each event id has in the store."""

    async def checkpoint(self, name: str) -> int | None:
        """The stored position of checkpoint ``name`` (None before the first commit)."""


def contract_fill(n: int) -> Event[Any]:
    """Fill number ``n`` (the default event of the suite)."""
    return new_event(
        TradeExecuted(
            order_id=f"contract-order-{n}",
            bot_id="contract-bot",
            user_id="contract-user",
            symbol="BTCUSDT",
            trade_id=f"contract-trade-{n}",
            side=Side.BUY,
            quantity=Decimal(n),
            price=Decimal("10"),
            fee=Decimal(0),
            fee_currency="USDT",
            executed_at=datetime(2026, 1, 1, tzinfo=UTC),
        ),
        source="contract-suite",
    )


def batch_of(events: Sequence[tuple[int, Event[Any]]], checkpoint: str = CHECKPOINT) -> Batch[Any]:
    """A batch as the runtime builds it: (stream sequence, event) pairs in stream order."""
    deliveries: list[Delivery[Any]] = []
    for seq, event in events:
        subject = subject_for(event)
        # The adapter never touches the message; the runtime acks it after the commit.
        msg = Msg(_client=cast(Any, None), subject=subject, data=b"")
        deliveries.append(Delivery(event, subject, "CONTRACT", seq, 1, msg))
    return Batch(deliveries, checkpoint)


class StoreContract:
    """Idempotence, checkpoint and atomicity claims every store adapter must pass."""

    def make_event(self, n: int) -> Event[Any]:
        """Event number ``n`` the adapter accepts; override for other payloads."""
        return contract_fill(n)

    def numbered(self, first: int, last: int) -> list[tuple[int, Event[Any]]]:
        """Events ``first..last`` at stream sequences ``first..last``."""
        return [(n, self.make_event(n)) for n in range(first, last + 1)]

    async def test_same_batch_twice_gives_one_effect(self, contract_store: ContractStore) -> None:
        """Redelivery of a committed batch changes nothing."""
        events = self.numbered(1, 5)
        await contract_store.apply(batch_of(events))
        await contract_store.apply(batch_of(events))
        assert dict(await contract_store.effects()) == {e.id: 1 for _, e in events}
        assert await contract_store.checkpoint(CHECKPOINT) == 5

    async def test_same_event_at_two_positions_gives_one_effect(
        self, contract_store: ContractStore
    ) -> None:
        """A duplicate published outside the stream's window lands at a new sequence."""
        event = self.make_event(1)
        await contract_store.apply(batch_of([(1, event)]))
        await contract_store.apply(batch_of([(2, event), (3, self.make_event(3))]))
        effects = await contract_store.effects()
        assert effects[event.id] == 1
        assert len(effects) == 2
        assert await contract_store.checkpoint(CHECKPOINT) == 3

    async def test_batch_overlapping_the_checkpoint_applies_only_new_events(
        self, contract_store: ContractStore
    ) -> None:
        """Events at or below the stored position were applied before: only the rest count."""
        await contract_store.apply(batch_of(self.numbered(1, 4)))
        overlap = self.numbered(3, 8)
        await contract_store.apply(batch_of(overlap))
        effects = await contract_store.effects()
        assert len(effects) == 8
        assert set(effects.values()) == {1}
        assert await contract_store.checkpoint(CHECKPOINT) == 8

    async def test_crash_before_commit_leaves_neither_effects_nor_checkpoint(
        self, contract_store: ContractStore
    ) -> None:
        """Effects and checkpoint move together: a failure mid-batch leaves neither."""
        await contract_store.apply(batch_of(self.numbered(1, 2)))
        crashed = self.numbered(3, 6)
        with pytest.raises(Exception):  # noqa: B017, PT011 - any failure must roll back
            await contract_store.apply_and_crash(batch_of(crashed))
        assert len(await contract_store.effects()) == 2
        assert await contract_store.checkpoint(CHECKPOINT) == 2

        # Redelivery after the crash applies the batch once.
        await contract_store.apply(batch_of(crashed))
        effects = await contract_store.effects()
        assert len(effects) == 6
        assert set(effects.values()) == {1}
        assert await contract_store.checkpoint(CHECKPOINT) == 6

    async def test_checkpoints_are_per_consumer(self, contract_store: ContractStore) -> None:
        """Two consumers (or partitions) of one store keep their own positions."""
        await contract_store.apply(batch_of(self.numbered(1, 3), checkpoint="consumer-a"))
        await contract_store.apply(batch_of(self.numbered(4, 5), checkpoint="consumer-b"))
        assert await contract_store.checkpoint("consumer-a") == 3
        assert await contract_store.checkpoint("consumer-b") == 5
        assert len(await contract_store.effects()) == 5

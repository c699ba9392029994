"""PostgresTradeStore against a real PostgreSQL: idempotency, orders, positions, errors."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from importlib import resources
from typing import Any

import asyncpg
import pytest

from fleet_events import Event, Side
from fleet_runtime.errors import StoreUnavailable
from fleet_runtime.startup import StartupRefused
from fleet_testing.batches import Sequencer
from trade_recorder.store import PostgresTradeStore

from .conftest import T0, TradeEvents


async def rows(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def totals(dsn: str) -> tuple[int, Decimal, Decimal]:
    [row] = await rows(
        dsn, "SELECT count(*) AS n, sum(quantity) AS q, sum(fee) AS f FROM trading.trades"
    )
    return row["n"], row["q"] or Decimal(0), row["f"] or Decimal(0)


async def test_a_fill_is_recorded_once_under_any_event_id(
    store: PostgresTradeStore,
    trading_dsns: tuple[str, str],
    stream: Sequencer,
    events: type[TradeEvents],
) -> None:
    owner, _ = trading_dsns
    first = await store.record(stream.batch([events.fill("t1", quantity="2", fee="0.5")]))
    again = await store.record(stream.batch([events.fill("t1", quantity="2", fee="0.5")]))
    assert (first.fills_recorded, again.fills_recorded, again.fills_repeated) == (1, 0, 1)
    assert await totals(owner) == (1, Decimal(2), Decimal("0.5"))
    [pos] = await rows(owner, "SELECT quantity, fees, fill_count FROM trading.positions")
    assert (pos["quantity"], pos["fees"], pos["fill_count"]) == (Decimal(2), Decimal("0.5"), 1)
    [order] = await rows(owner, "SELECT filled_quantity, fill_count FROM trading.orders")
    assert (order["filled_quantity"], order["fill_count"]) == (Decimal(2), 1)


async def test_a_redelivered_batch_is_covered_by_the_checkpoint(
    store: PostgresTradeStore,
    trading_dsns: tuple[str, str],
    stream: Sequencer,
    events: type[TradeEvents],
) -> None:
    batch = stream.batch([events.fill(f"t{i}", quantity="1.5") for i in range(5)])
    await store.record(batch)
    replay = await store.record(batch)
    assert (replay.skipped, replay.fills_recorded) == (5, 0)
    # A redelivery that overlaps the checkpoint applies only the part beyond it.
    tail = stream.batch([events.fill("t5", quantity="1.5")])
    overlap = type(batch)([*batch.deliveries[3:], *tail.deliveries], batch.checkpoint)
    result = await store.record(overlap)
    assert (result.skipped, result.fills_recorded) == (2, 1)
    assert await totals(trading_dsns[0]) == (6, Decimal(9), Decimal(0))
    assert await store.checkpoint(batch.checkpoint) == tail.last_seq


async def test_duplicates_inside_one_batch_count_once(
    store: PostgresTradeStore,
    trading_dsns: tuple[str, str],
    stream: Sequencer,
    events: type[TradeEvents],
) -> None:
    batch = stream.batch(
        [
            events.fill("t1", quantity="1", price="100"),
            events.fill("t1", quantity="1", price="100"),
            events.fill("t2", side=Side.SELL, quantity="1", price="105"),
            events.fill("t2", side=Side.SELL, quantity="1", price="105"),
        ]
    )
    result = await store.record(batch)
    assert (result.fills_recorded, result.fills_repeated) == (2, 2)
    [pos] = await rows(trading_dsns[0], "SELECT * FROM trading.positions")
    assert (pos["is_open"], pos["realized_pnl"], pos["quantity"]) == (False, Decimal(5), 0)


async def test_orders_complete_or_fail_once(
    store: PostgresTradeStore,
    trading_dsns: tuple[str, str],
    stream: Sequencer,
    events: type[TradeEvents],
) -> None:
    await store.record(
        stream.batch(
            [
                events.fill("t1", order_id="o1", quantity="1", price="100"),
                events.fill("t2", order_id="o1", quantity="2", price="103"),
                events.completed("o1", filled="3", average="102"),
                events.failed("o2", reason="insufficient margin"),
                events.completed("o2"),  # after its failure: ignored
            ]
        )
    )
    # Later outcomes, and a fill after completion, never reopen or re-finish an order.
    await store.record(
        stream.batch(
            [
                events.failed("o1", reason="late"),
                events.completed("o3", filled="1", average="99"),
                events.fill("t3", order_id="o3", quantity="1", price="99"),
            ]
        )
    )
    got = {
        r["order_id"]: r
        for r in await rows(trading_dsns[0], "SELECT * FROM trading.orders ORDER BY order_id")
    }
    assert got["o1"]["status"] == "completed"
    assert got["o1"]["filled_quantity"] == Decimal(3)
    assert got["o1"]["fill_count"] == 2
    assert got["o1"]["reported_filled_quantity"] == Decimal(3)
    assert got["o1"]["average_price"] == Decimal(102)
    assert got["o1"]["failure_reason"] is None
    assert (got["o2"]["status"], got["o2"]["failure_reason"]) == ("failed", "insufficient margin")
    assert got["o2"]["filled_quantity"] == 0
    assert (got["o3"]["status"], got["o3"]["filled_quantity"]) == ("completed", Decimal(1))


async def test_decimals_keep_their_digits_and_scale_in_any_notation(
    store: PostgresTradeStore,
    trading_dsns: tuple[str, str],
    stream: Sequencer,
    events: type[TradeEvents],
) -> None:
    # Decimals reach PostgreSQL as text: exponent notation must read back as the same
    # number with the same scale.
    price, quantity, fee = Decimal("1E+2"), Decimal("0.00000010"), Decimal("1.5E-7")
    await store.record(
        stream.batch(
            [
                events.fill("t1", order_id="o1", quantity=quantity, price=price, fee=fee),
                events.completed("o1", filled="1.0E-7", average="1.00E+2"),
            ]
        )
    )
    owner, _ = trading_dsns
    [trade] = await rows(owner, "SELECT price::text, quantity::text, fee::text FROM trading.trades")
    assert tuple(trade) == (format(price, "f"), format(quantity, "f"), format(fee, "f"))
    [order] = await rows(
        owner,
        "SELECT filled_quantity::text, reported_filled_quantity::text, average_price::text "
        "FROM trading.orders",
    )
    assert tuple(order) == ("0.00000010", "0.00000010", "100")
    [pos] = await rows(
        owner, "SELECT quantity::text, average_entry_price, fees::text FROM trading.positions"
    )
    assert (pos[0], pos[1], pos[2]) == ("0.00000010", Decimal(100), format(fee, "f"))


# -- positions after a long random sequence, against an independent recomputation ------


@dataclass
class Book:
    """Expected positions of one key: closed history plus the open one (signed quantity)."""

    closed: list[tuple[str, Decimal, Decimal, Decimal]] = field(default_factory=list)
    qty: Decimal = Decimal(0)
    avg: Decimal = Decimal(0)
    pnl: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)

    def apply(self, signed: Decimal, price: Decimal, fee: Decimal) -> None:
        with localcontext() as ctx:
            ctx.prec = 120
            if self.qty == 0:
                self.qty, self.avg, self.pnl, self.fees = signed, price, Decimal(0), fee
            elif (self.qty > 0) == (signed > 0):
                total = abs(self.qty) + abs(signed)
                self.avg = ((self.avg * abs(self.qty) + price * abs(signed)) / total).quantize(
                    Decimal("0.000000000000000001"), rounding=ROUND_HALF_EVEN
                )
                self.qty += signed
                self.fees += fee
            else:
                closing = min(abs(self.qty), abs(signed))
                self.pnl += (price - self.avg) * closing * (1 if self.qty > 0 else -1)
                self.fees += fee
                after = self.qty + signed
                if after == 0 or (after > 0) != (self.qty > 0):
                    side = "LONG" if self.qty > 0 else "SHORT"
                    self.closed.append((side, self.avg, self.pnl, self.fees))
                    self.qty, self.pnl, self.fees = after, Decimal(0), Decimal(0)
                    self.avg = price
                else:
                    self.qty = after

    def expected(self) -> list[tuple[str, Decimal, Decimal, Decimal, Decimal, bool]]:
        got = [(side, Decimal(0), avg, pnl, fees, False) for side, avg, pnl, fees in self.closed]
        if self.qty != 0:
            side = "LONG" if self.qty > 0 else "SHORT"
            got.append((side, abs(self.qty), self.avg, self.pnl, self.fees, True))
        return got


@pytest.mark.parametrize("seed", [20250102])
async def test_positions_after_2000_random_fills_match_a_recomputation(
    store: PostgresTradeStore,
    trading_dsns: tuple[str, str],
    stream: Sequencer,
    events: type[TradeEvents],
    seed: int,
) -> None:
    rng = random.Random(seed)
    keys = [(u, b, s) for u in ("u1", "u2") for b in ("b1", "b2", "b3") for s in ("BTC", "ETH")]
    fills: list[Event[Any]] = []
    for n in range(2000):
        user, bot, symbol = rng.choice(keys)
        fills.append(
            events.fill(
                f"t{n}",
                side=rng.choice([Side.BUY, Side.SELL]),
                quantity=Decimal(rng.randint(1, 50_000)) / 10_000,
                price=Decimal(rng.randint(9_000, 11_000)) / 100,
                fee=Decimal(rng.randint(0, 999)) / 10_000,
                order_id=f"o{n // 3}",
                bot_id=bot,
                user_id=user,
                symbol=symbol,
                at=T0 + timedelta(seconds=n),
            )
        )
    # Feed in random batch sizes; re-send ~10% of earlier fills under new event ids and
    # redeliver some whole batches, as at-least-once delivery would.
    books: dict[tuple[str, str, str], Book] = defaultdict(Book)
    i = 0
    sent = 0
    while i < len(fills):
        chunk = fills[i : i + rng.randint(1, 120)]
        i += len(chunk)
        resend = [
            events.fill(
                e.data.trade_id,
                side=e.data.side,
                quantity=e.data.quantity,
                price=e.data.price,
                fee=e.data.fee,
                order_id=e.data.order_id,
                bot_id=e.data.bot_id,
                user_id=e.data.user_id,
                symbol=e.data.symbol,
                at=e.data.executed_at,
            )
            for e in rng.sample(fills[:i], k=min(i, rng.randint(0, 12)))
        ]
        rng.shuffle(resend)
        mixed = [*chunk, *resend]
        batch = stream.batch(mixed)
        await store.record(batch)
        sent += len(mixed)
        if rng.random() < 0.2:
            assert (await store.record(batch)).skipped == len(batch)
    for e in fills:
        d = e.data
        signed = d.quantity if d.side is Side.BUY else -d.quantity
        books[(d.user_id, d.bot_id, d.symbol)].apply(signed, d.price, d.fee)

    owner = trading_dsns[0]
    assert sent > len(fills)
    expected_qty = sum((e.data.quantity for e in fills), Decimal(0))
    expected_fee = sum((e.data.fee for e in fills), Decimal(0))
    assert await totals(owner) == (2000, expected_qty, expected_fee)
    stored = await rows(
        owner,
        "SELECT user_id, bot_id, symbol, side, quantity, average_entry_price, realized_pnl, "
        "fees, is_open FROM trading.positions ORDER BY user_id, bot_id, symbol, id",
    )
    by_key: dict[tuple[str, str, str], list[tuple[Any, ...]]] = defaultdict(list)
    for r in stored:
        by_key[(r["user_id"], r["bot_id"], r["symbol"])].append(
            (
                r["side"],
                r["quantity"],
                r["average_entry_price"],
                r["realized_pnl"],
                r["fees"],
                r["is_open"],
            )
        )
    assert set(by_key) == set(books)
    for key, book in books.items():
        assert by_key[key] == book.expected(), key
    # The sequence exercises closes and flips, not only adds.
    assert sum(len(b.closed) for b in books.values()) > 50
    [orders] = await rows(
        owner,
        "SELECT count(*) AS n, sum(filled_quantity) AS q, sum(fill_count) AS c FROM trading.orders",
    )
    assert (orders["n"], orders["q"], orders["c"]) == (667, expected_qty, 2000)


# -- errors --------------------------------------------------------------------------


async def test_an_unreachable_server_is_store_unavailable() -> None:
    with pytest.raises(StoreUnavailable):
        await PostgresTradeStore.connect(
            "postgresql://trade_recorder@127.0.0.1:9/tradefleet", command_timeout=2
        )


async def test_a_database_without_the_schema_is_a_permanent_error_naming_the_fix(
    postgres_database: str,
) -> None:
    opened = await PostgresTradeStore.connect(postgres_database)
    try:
        with pytest.raises(StartupRefused, match="not migrated") as err:
            await opened.probe()
        assert err.value.fix is not None
        assert "`trade-recorder migrate`" in err.value.fix
    finally:
        await opened.close()


async def test_the_worker_role_cannot_change_the_migrations_table(
    trading_dsns: tuple[str, str],
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await rows(trading_dsns[1], "DELETE FROM trading.schema_migrations")


async def test_only_the_reviewed_secondary_indexes_exist_each_named_with_its_query(
    trading_dsns: tuple[str, str],
) -> None:
    found = await rows(
        trading_dsns[0],
        "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "JOIN pg_namespace n ON n.oid = i.relnamespace "
        "WHERE n.nspname = 'trading' AND NOT x.indisprimary "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)",
    )
    kept = {"trades_user_executed_idx", "positions_open_key", "positions_user_idx"}
    assert {r[0] for r in found} == kept
    review = (resources.files("trade_recorder.migrations") / "0002_index_review.sql").read_text()
    for name in kept:
        assert f"- {name} (" in review

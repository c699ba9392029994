"""The only place trade-recorder subscribes: TRADES -> trades, orders, positions."""

from __future__ import annotations

from fleet_events import TRADES_STREAM, Event, TradeCompleted, TradeFailed
from fleet_runtime.consume import Subscription
from fleet_runtime.delivery import Batch
from fleet_runtime.logs import get_logger
from trade_recorder.executions import Execution, decode_trade_event
from trade_recorder.store import TradeStore

log = get_logger("trade_recorder")

DURABLE = "trade-recorder"

TradeEvent = Execution | Event[TradeCompleted] | Event[TradeFailed]


def subscriptions(store: TradeStore) -> list[Subscription]:
    """The worker's one subscription, bound to ``store``."""

    async def on_trades(batch: Batch[TradeEvent]) -> None:
        result = await store.record(batch)
        log.debug(
            "trades_recorded",
            checkpoint=batch.checkpoint,
            seq=batch.last_seq,
            fills=result.fills_recorded,
            repeated=result.fills_repeated,
            orders_finished=result.orders_finished,
            skipped=result.skipped,
        )

    return [
        Subscription(
            stream=TRADES_STREAM,
            durable=DURABLE,
            handler=on_trades,
            # Fills become ``Execution``s on the canonical lane; the rest as the runtime
            # decodes them (ACCEPTS).
            decode=decode_trade_event,
        )
    ]

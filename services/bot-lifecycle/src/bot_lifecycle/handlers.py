"""The only place bot-lifecycle subscribes: BOTS -> users, bots, deployments, audit log."""

from __future__ import annotations

from bot_lifecycle.store import BotStore
from bot_lifecycle.transitions import StatusChange, decode_bot_event
from fleet_events import (
    BOTS_STREAM,
    BotCreated,
    BotDeleted,
    BotDeployed,
    BotUpdated,
    Event,
)
from fleet_runtime.consume import Subscription
from fleet_runtime.delivery import Batch
from fleet_runtime.logs import get_logger

log = get_logger("bot_lifecycle")

DURABLE = "bot-lifecycle"

BotEvent = (
    Event[BotCreated] | Event[BotUpdated] | Event[BotDeployed] | StatusChange | Event[BotDeleted]
)


def subscriptions(store: BotStore) -> list[Subscription]:
    """The worker's one subscription, bound to ``store``.

    An event invalid for its bot's state makes ``store.apply`` raise ``EventRejected``;
    the runtime dead-letters it with the reason and re-runs the rest of the batch.
    """

    async def on_bots(batch: Batch[BotEvent]) -> None:
        result = await store.apply(batch)
        log.debug(
            "bot_events_applied",
            checkpoint=batch.checkpoint,
            seq=batch.last_seq,
            applied=result.applied,
            ignored=result.ignored,
            skipped=result.skipped,
        )

    return [
        Subscription(
            stream=BOTS_STREAM,
            durable=DURABLE,
            handler=on_bots,
            # Starts and stops become ``StatusChange``s on the canonical lane; the rest as
            # the runtime decodes them (ACCEPTS).
            decode=decode_bot_event,
        )
    ]

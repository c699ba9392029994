"""Make the server match streams.yaml: update in place; recreate or prune only when asked."""

from __future__ import annotations

import structlog
from nats.js import JetStreamContext
from nats.js.errors import APIError

from fleet_runtime.errors import UserError
from fleet_runtime.topology.model import Topology
from fleet_runtime.topology.plan import Action, Change, Plan, plan, plan_consumers

log = structlog.get_logger(__name__)


def safe_path(change: Change) -> str:
    """How to make a change the server refuses without losing data or position."""
    if change.consumer is None:
        held = f" and its {change.messages} messages" if change.messages is not None else ""
        return (
            f"create a new stream (e.g. {change.stream}_V2) with the new settings that sources "
            f"{change.stream} (`nats stream add {change.stream}_V2 --source {change.stream}`), "
            "move publishers and consumers to it, then delete the old stream; or run "
            f"`fleet topology apply --allow-recreate`, which DELETES {change.stream}{held}"
        )
    return (
        f"declare a new durable (set `durable:` to a new name) with the new policy, move the "
        f"worker to it, then `--prune` the old one; or run `fleet topology apply "
        f"--allow-recreate`, which deletes {change.consumer} and its position (the new durable "
        "starts again from its deliver_policy)"
    )


class RecreateRefused(UserError):
    """Some declared changes need a delete and recreate, and --allow-recreate was not given."""

    def __init__(self, changes: list[Change]) -> None:
        lines = []
        for change in changes:
            reasons = "; ".join(f"{f.render()}" for f in change.blocked)
            lines.append(f"  {change.label}: {reasons}\n    safe path: {safe_path(change)}")
        super().__init__(
            "refused: these changes cannot be made in place and would destroy data or "
            "consumer position; nothing was changed:\n" + "\n".join(lines),
            fix="follow a safe path above, or pass --allow-recreate to delete and recreate",
        )
        self.changes = changes


class ServerRefused(UserError):
    """The server rejected a create or update the file asked for."""


def _refused(change: Change, exc: APIError) -> ServerRefused:
    return ServerRefused(
        f"the server refused to {change.action.value} {change.label}: {exc.description} "
        f"(err_code {exc.err_code})",
        fix="change the file so the server accepts it, then run apply again",
    )


async def _apply_stream(js: JetStreamContext, topology: Topology, change: Change) -> None:
    spec = topology.streams[change.stream]
    if change.action is Action.CREATE:
        await js.add_stream(spec.stream_config(change.stream))
    elif change.action is Action.UPDATE:
        # Start from the live config so keys the file leaves out keep their server values.
        live = await js.stream_info(change.stream)
        await js.update_stream(live.config.evolve(**spec.nats_values()))
    elif change.action is Action.RECREATE:
        log.warning("stream_recreated", stream=change.stream, messages_deleted=change.messages)
        await js.delete_stream(change.stream)
        await js.add_stream(spec.stream_config(change.stream))


async def _apply_consumer(js: JetStreamContext, change: Change) -> None:
    name = change.consumer
    assert name is not None
    durable = change.durable
    if change.action is Action.DELETE:
        await js.delete_consumer(change.stream, name)
        return
    assert durable is not None
    if change.action is Action.CREATE:
        await js.add_consumer(change.stream, durable.consumer_config())
    elif change.action is Action.UPDATE:
        # add_consumer with an existing durable name updates it (there is no update call).
        live = await js.consumer_info(change.stream, name)
        values = durable.spec.nats_values(durable.partition)
        await js.add_consumer(change.stream, live.config.evolve(**values))
    elif change.action is Action.RECREATE:
        log.warning("consumer_recreated", stream=change.stream, consumer=name)
        await js.delete_consumer(change.stream, name)
        await js.add_consumer(change.stream, durable.consumer_config())


async def _run(js: JetStreamContext, change: Change, topology: Topology) -> None:
    try:
        if change.consumer is None:
            if change.action is Action.DELETE:
                log.warning("stream_pruned", stream=change.stream, messages_deleted=change.messages)
                await js.delete_stream(change.stream)
            else:
                await _apply_stream(js, topology, change)
        else:
            await _apply_consumer(js, change)
    except APIError as exc:
        raise _refused(change, exc) from None


async def apply(
    js: JetStreamContext,
    topology: Topology,
    *,
    allow_recreate: bool = False,
    prune: bool = False,
) -> Plan:
    """Bring the server in line with `topology` and return what was done.

    Idempotent: a second call finds everything unchanged. Changes the server cannot make in
    place raise RecreateRefused before anything is touched, unless `allow_recreate` (which
    deletes and recreates, losing the stream's messages or the consumer's position).
    Streams and durables missing from the file are deleted only with `prune`.
    """
    first = await plan(js, topology, prune=prune)
    blocked = first.of(Action.RECREATE)
    if blocked and not allow_recreate:
        raise RecreateRefused(blocked)
    done = Plan()
    for change in first.changes:
        if change.consumer is None and change.stream in topology.streams:
            await _run(js, change, topology)
            done.changes.append(change)
    # Consumers are planned again after the streams: a recreated stream lost its consumers.
    for name in topology.streams:
        for change in await plan_consumers(js, topology, name, prune=prune):
            if change.action is not Action.EXTRA:
                await _run(js, change, topology)
            done.changes.append(change)
    for change in first.changes:
        if change.consumer is None and change.stream not in topology.streams:
            if change.action is Action.DELETE:
                await _run(js, change, topology)
            done.changes.append(change)
    return done

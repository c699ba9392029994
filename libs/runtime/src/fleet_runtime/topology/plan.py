"""Compare streams.yaml with a live server: what to create, update, recreate, or what is extra."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo, StreamInfo

from fleet_runtime.topology.diff import FieldChange, diff_consumer, diff_stream
from fleet_runtime.topology.model import Durable, Topology

# JetStream keeps KV buckets and object stores as streams with these prefixes; they are
# not event streams and never belong to streams.yaml.
MANAGED_PREFIXES = ("KV_", "OBJ_")
# The JetStream API returns at most this many streams or consumers per list request.
_API_PAGE = 256


class Action(StrEnum):
    """What apply would do with one stream or consumer."""

    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    RECREATE = "requires-recreate"
    EXTRA = "extra"
    DELETE = "delete"


@dataclass(frozen=True)
class Change:
    """The planned action for one stream (`consumer` None) or one durable consumer."""

    stream: str
    consumer: str | None
    action: Action
    fields: tuple[FieldChange, ...] = ()
    durable: Durable | None = None
    messages: int | None = None

    @property
    def kind(self) -> str:
        """`stream` or `consumer`."""
        return "stream" if self.consumer is None else "consumer"

    @property
    def label(self) -> str:
        """`stream TRADES` or `consumer TRADES/trade-recorder`."""
        return (
            f"stream {self.stream}"
            if self.consumer is None
            else (f"consumer {self.stream}/{self.consumer}")
        )

    @property
    def blocked(self) -> list[FieldChange]:
        """Field changes the server refuses to apply in place."""
        return [change for change in self.fields if change.blocked]


@dataclass
class Plan:
    """Every stream and consumer of the file and of the server, with the action for each."""

    changes: list[Change] = field(default_factory=list)

    def of(self, *actions: Action) -> list[Change]:
        """The changes with one of `actions`, in plan order."""
        return [change for change in self.changes if change.action in actions]

    @property
    def differs(self) -> bool:
        """True when the server differs from the file in any way (extras included)."""
        return any(change.action is not Action.UNCHANGED for change in self.changes)

    def summary(self) -> str:
        """`2 create, 1 update, 5 unchanged`."""
        counts = [(action, len(self.of(action))) for action in Action]
        return ", ".join(f"{n} {action.value}" for action, n in counts if n) or "nothing declared"


async def list_streams(js: JetStreamContext) -> dict[str, StreamInfo]:
    """Every event stream on the server by name (KV and object-store streams left out)."""
    streams: dict[str, StreamInfo] = {}
    offset = 0
    while True:
        page = await js.streams_info(offset=offset)
        for info in page:
            name = info.config.name or ""
            if not name.startswith(MANAGED_PREFIXES):
                streams[name] = info
        if len(page) < _API_PAGE:
            return streams
        offset += len(page)


async def list_durables(js: JetStreamContext, stream: str) -> dict[str, ConsumerInfo]:
    """The durable consumers of a stream by name; ephemeral ones (replays) are left out."""
    durables: dict[str, ConsumerInfo] = {}
    offset = 0
    while True:
        page = await js.consumers_info(stream, offset=offset)
        for info in page:
            if info.config.durable_name:
                durables[info.name] = info
        if len(page) < _API_PAGE:
            return durables
        offset += len(page)


def _stream_change(name: str, topology: Topology, live: StreamInfo | None) -> Change:
    if live is None:
        return Change(name, None, Action.CREATE)
    fields = tuple(diff_stream(topology.streams[name], live.config))
    action = Action.UPDATE if fields else Action.UNCHANGED
    if any(change.blocked for change in fields):
        action = Action.RECREATE
    return Change(name, None, action, fields, messages=live.state.messages)


def _consumer_change(durable: Durable, live: ConsumerInfo | None) -> Change:
    if live is None:
        return Change(durable.stream, durable.name, Action.CREATE, durable=durable)
    fields = tuple(diff_consumer(durable.spec, durable.partition, live.config))
    action = Action.UPDATE if fields else Action.UNCHANGED
    if any(change.blocked for change in fields):
        action = Action.RECREATE
    return Change(durable.stream, durable.name, action, fields, durable)


async def plan_consumers(
    js: JetStreamContext, topology: Topology, stream: str, *, prune: bool = False
) -> list[Change]:
    """The consumer changes of one declared stream that exists on the server."""
    live = await list_durables(js, stream)
    changes: list[Change] = []
    declared = [durable for durable in topology.durables() if durable.stream == stream]
    for durable in declared:
        changes.append(_consumer_change(durable, live.get(durable.name)))
    names = {durable.name for durable in declared}
    extra = Action.DELETE if prune else Action.EXTRA
    changes.extend(Change(stream, name, extra) for name in sorted(live) if name not in names)
    return changes


async def plan(js: JetStreamContext, topology: Topology, *, prune: bool = False) -> Plan:
    """What apply would change on the server to match `topology`; reads only.

    Streams and durables on the server but not in the file are `extra`, or `delete` with
    `prune`.
    """
    live_streams = await list_streams(js)
    result = Plan()
    for name in topology.streams:
        stream_change = _stream_change(name, topology, live_streams.get(name))
        result.changes.append(stream_change)
        if stream_change.action is Action.CREATE:
            result.changes.extend(
                Change(d.stream, d.name, Action.CREATE, durable=d)
                for d in topology.durables()
                if d.stream == name
            )
        else:
            result.changes.extend(await plan_consumers(js, topology, name, prune=prune))
    extra = Action.DELETE if prune else Action.EXTRA
    for name in sorted(live_streams):
        if name not in topology.streams:
            messages = live_streams[name].state.messages
            result.changes.append(Change(name, None, extra, messages=messages))
    return result

"""What each NATS user of the fleet may publish and subscribe to, derived from streams.yaml.

One user per worker, one ``publisher`` (services outside the fleet, `fleet publish`, the
dev simulator) and one ``admin`` (`fleet topology apply`, the operator commands). What a
worker receives and sends is the same model the AsyncAPI document is built from
(``fleet_runtime.contract.operations.worker_roles``), so the contract and the
permissions never disagree.

Replies go to a per-user inbox (``_INBOX.<user>``): the client connects with that inbox
prefix (``fleet_runtime.natsauth``), so no user can read another's replies, pulled
messages included.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from fleet_events import EVENT_TYPES, Payload, subject_filter
from fleet_events.subjects import DLQ_PREFIX
from fleet_runtime.contract.messages import DEAD_LETTER_CHANNEL, channel_id
from fleet_runtime.contract.operations import worker_roles
from fleet_runtime.errors import ConfigError
from fleet_runtime.exhausted import EXHAUSTED_STREAM
from fleet_runtime.security.credentials import inbox_prefix
from fleet_runtime.topology import Topology
from fleet_runtime.topology.model import durable_name
from fleet_runtime.workers import WorkerSpec

ADMIN = "admin"
PUBLISHER = "publisher"
RESERVED = (ADMIN, PUBLISHER)
API = "$JS.API"
ALL_STREAMS = "*"


@dataclass(frozen=True)
class Grant:
    """One NATS user: the subjects it may publish to and subscribe to (``None``: all)."""

    user: str
    publish: tuple[str, ...] | None
    subscribe: tuple[str, ...] | None
    summary: str
    durables: tuple[tuple[str, str], ...] = field(default=())

    @property
    def unrestricted(self) -> bool:
        """Whether the user may do everything (the admin)."""
        return self.publish is None and self.subscribe is None


def reader_consumer(worker: str) -> str:
    """The one named short-lived consumer a worker may create, pull and delete on each
    stream it reads (backup-runner's archive pulls through it)."""
    return f"{worker}-reader"


def _stream_reader(stream: str, worker: str) -> list[str]:
    # Read-only stream APIs; name-less (ephemeral, ordered) consumers for replays, which
    # that subject cannot use to name, and so change, anyone's durable; their info and
    # flow control; and the worker's own named reader consumer.
    reader = reader_consumer(worker)
    return [
        f"{API}.STREAM.INFO.{stream}",
        f"{API}.STREAM.MSG.GET.{stream}",
        f"{API}.DIRECT.GET.{stream}",
        f"{API}.DIRECT.GET.{stream}.>",
        f"{API}.CONSUMER.LIST.{stream}",
        f"{API}.CONSUMER.NAMES.{stream}",
        f"{API}.CONSUMER.INFO.{stream}.*",
        f"{API}.CONSUMER.CREATE.{stream}",
        f"$JS.FC.{stream}.>",
        f"{API}.CONSUMER.CREATE.{stream}.{reader}",
        f"{API}.CONSUMER.CREATE.{stream}.{reader}.>",
        f"{API}.CONSUMER.MSG.NEXT.{stream}.{reader}",
        f"{API}.CONSUMER.DELETE.{stream}.{reader}",
        f"$JS.ACK.{stream}.{reader}.>",
    ]


def _durable_user(stream: str, durable: str) -> list[str]:
    return [
        f"{API}.CONSUMER.MSG.NEXT.{stream}.{durable}",
        f"{API}.CONSUMER.INFO.{stream}.{durable}",
        f"{API}.CONSUMER.PAUSE.{stream}.{durable}",
        f"$JS.ACK.{stream}.{durable}.>",
    ]


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _event_subjects(event_types: Mapping[str, type[Payload]]) -> dict[str, str]:
    return {channel_id(t): subject_filter(p) for t, p in event_types.items()}


def worker_grant(
    name: str,
    topology: Topology,
    role_sends: Iterable[str],
    subjects: Mapping[str, str],
    *,
    also_sends: Iterable[str] = (),
    reads: Iterable[str] = (),
    max_partitions: int = 0,
) -> Grant:
    """A worker's user: its own durables, its outputs, its dead letters, nothing else.

    ``max_partitions`` also grants the partition durables ``<durable>-p0`` up to that
    count, so a stream can be partitioned (or repartitioned) without new credentials.
    """
    publish: list[str] = []
    durables: list[tuple[str, str]] = []
    streams: list[str] = []
    for consumer in topology.consumers_for(name):
        names = consumer.durable_names()
        names += [durable_name(consumer.name, k) for k in range(max_partitions)]
        for durable in dict.fromkeys(names):
            durables.append((consumer.stream, durable))
            publish += _durable_user(consumer.stream, durable)
        streams.append(consumer.stream)
    extra = list(topology.streams) if ALL_STREAMS in reads else list(reads)
    for stream in extra:
        if stream not in topology.streams:
            raise ConfigError(
                f"worker {name!r} declares it reads stream {stream!r}, which streams.yaml "
                "does not declare",
                fix=f"fix `reads_streams` in the WorkerSpec of {name} "
                f"(streams: {', '.join(topology.streams)})",
            )
    for stream in dict.fromkeys([*streams, *extra]):
        publish += _stream_reader(stream, name)
    if durables:
        # Events the server gave up on after a crash loop: the worker moves its own
        # advisories from EXHAUSTED to the DLQ and deletes them (fleet_runtime.exhausted).
        publish += [
            f"{API}.STREAM.INFO.{EXHAUSTED_STREAM}",
            f"{API}.STREAM.MSG.GET.{EXHAUSTED_STREAM}",
            f"{API}.STREAM.MSG.DELETE.{EXHAUSTED_STREAM}",
        ]
    for channel in role_sends:
        if channel == DEAD_LETTER_CHANNEL:
            publish.append(f"{DLQ_PREFIX}.{name}.>")
        else:
            publish.append(subjects[channel])
    for event_type in also_sends:
        channel = channel_id(event_type)
        if channel not in subjects:
            raise ConfigError(
                f"worker {name!r} declares it also publishes {event_type!r}, which is not an "
                "event type of fleet_events",
                fix=f"fix `also_publishes` in the WorkerSpec of {name}",
            )
        publish.append(subjects[channel])
    what = ", ".join(f"{s}/{d}" for s, d in durables) or "no durable"
    return Grant(
        user=name,
        publish=_unique(publish),
        subscribe=(f"{inbox_prefix(name)}.>",),
        summary=f"worker: pulls and acks {what}",
        durables=tuple(durables),
    )


def publisher_grant(subjects: Iterable[str]) -> Grant:
    """Services outside the fleet: publish the events no worker publishes; never consume."""
    return Grant(
        user=PUBLISHER,
        publish=_unique([*sorted(subjects), f"{API}.STREAM.NAMES", f"{API}.INFO"]),
        subscribe=(f"{inbox_prefix(PUBLISHER)}.>",),
        summary="publishes the events services outside the fleet send; cannot consume",
    )


def admin_grant() -> Grant:
    """Topology apply and the operator commands: everything."""
    return Grant(ADMIN, None, None, "topology apply, dlq redrive, status, doctor: everything")


def fleet_grants(
    topology: Topology,
    workers: Mapping[str, WorkerSpec],
    event_types: Mapping[str, type[Payload]] | None = None,
    *,
    only: Iterable[str] | None = None,
    max_partitions: int = 0,
) -> list[Grant]:
    """The admin, the publisher and one grant per worker (installed or in streams.yaml).

    ``only`` limits the workers to those named; an unknown name is a ``ConfigError``.
    """
    types = dict(EVENT_TYPES if event_types is None else event_types)
    roles = worker_roles(topology, workers, types)
    for name in roles:
        if name in RESERVED:
            raise ConfigError(
                f"a worker may not be called {name!r}: the name is the {name} NATS user",
                fix="rename the worker",
            )
    wanted = list(roles) if only is None else list(only)
    unknown = [n for n in wanted if n not in roles]
    if unknown:
        raise ConfigError(
            f"unknown worker {unknown[0]!r} (workers: {', '.join(roles) or 'none'})",
            fix="name a worker that is installed or declared in streams.yaml",
        )
    subjects = _event_subjects(types)
    sent = {c for role in roles.values() for c in role.sends}
    external = [subjects[c] for c in subjects if c not in sent]
    grants = [admin_grant(), publisher_grant(external)]
    for name in wanted:
        spec = workers.get(name)
        grants.append(
            worker_grant(
                name,
                topology,
                roles[name].sends,
                subjects,
                also_sends=spec.also_publishes if spec else (),
                reads=spec.reads_streams if spec else (),
                max_partitions=max_partitions,
            )
        )
    return grants

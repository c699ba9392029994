"""The operations of the AsyncAPI document: what each worker receives and sends.

Events no worker publishes get a ``send`` operation of their own: services outside the
fleet publish those.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fleet_events import DLQ_STREAM, Payload, subject_filter
from fleet_runtime.contract.messages import (
    DEAD_LETTER_CHANNEL,
    DEAD_LETTER_MESSAGE,
    Doc,
    channel_id,
)
from fleet_runtime.errors import ConfigError
from fleet_runtime.topology import Topology
from fleet_runtime.topology.subjects import covers, overlaps
from fleet_runtime.workers import WorkerSpec


@dataclass
class Role:
    """What one worker receives (channel -> durables) and sends (channels)."""

    spec: WorkerSpec | None
    receives: dict[str, list[str]]
    sends: list[str]

    def extension(self) -> Doc:
        """The worker's entry in ``x-fleet-workers``."""
        info: Doc = {}
        if self.spec is not None:
            # Whether the worker is implemented yet is not part of the contract: what it
            # receives and sends is declared either way.
            info = {"store": self.spec.store, "summary": self.spec.summary}
        return {**info, "receives": sorted(self.receives), "sends": sorted(self.sends)}


def worker_roles(
    topology: Topology,
    workers: Mapping[str, WorkerSpec],
    event_types: Mapping[str, type[Payload]],
) -> dict[str, Role]:
    """Every worker installed or declared in streams.yaml, with what it receives and sends.

    Receives: the event types whose subjects the worker's durables deliver. Sends: dead
    letters (any worker with a durable), and the event types its WorkerSpec publishes.
    """
    names = sorted({*workers, *topology.workers()})
    roles: dict[str, Role] = {}
    for name in names:
        spec = workers.get(name)
        receives: dict[str, list[str]] = {}
        for consumer in topology.consumers_for(name):
            filters = consumer.filter_subjects or topology.streams[consumer.stream].subjects
            for event_type, payload in event_types.items():
                subject = subject_filter(payload)
                stream_subjects = topology.streams[consumer.stream].subjects
                if any(covers(s, subject) for s in stream_subjects) and any(
                    overlaps(f, subject) for f in filters
                ):
                    durables = receives.setdefault(channel_id(event_type), [])
                    durables.extend(consumer.durable_names())
        sends = [DEAD_LETTER_CHANNEL] if receives else []
        for event_type in spec.publishes if spec else ():
            if event_type not in event_types:
                raise ConfigError(
                    f"worker {name!r} declares it publishes {event_type!r}, which is not an "
                    "event type of fleet_events",
                    fix=f"fix `publishes` in the WorkerSpec of {name} "
                    f"(event types: {', '.join(event_types)})",
                )
            sends.append(channel_id(event_type))
        roles[name] = Role(spec, receives, sends)
    return roles


def _ref_message(channel: str, message: str) -> Doc:
    return {"$ref": f"#/channels/{channel}/messages/{message}"}


def operations(
    roles: Mapping[str, Role],
    event_types: Mapping[str, type[Payload]],
    streams: Mapping[str, str],
) -> Doc:
    """One operation per worker and channel it receives or sends, and one ``send`` per event
    type no worker publishes (services outside the fleet do), sorted by id."""
    message_of = {channel_id(t): p.__name__ for t, p in event_types.items()}
    message_of[DEAD_LETTER_CHANNEL] = DEAD_LETTER_MESSAGE
    title_of = {channel_id(t): t for t in event_types}
    title_of[DEAD_LETTER_CHANNEL] = "dead letters"
    stream_of = {channel_id(t): s for t, s in streams.items()}
    stream_of[DEAD_LETTER_CHANNEL] = DLQ_STREAM
    operations: Doc = {}
    for name, role in sorted(roles.items()):
        for channel, durables in sorted(role.receives.items()):
            operations[f"{name}-receives-{channel}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{channel}"},
                "summary": f"{name} reads {title_of[channel]} from stream {stream_of[channel]}.",
                "messages": [_ref_message(channel, message_of[channel])],
                "x-fleet-worker": name,
                "x-fleet-durables": sorted(set(durables)),
            }
        for channel in sorted(role.sends):
            operations[f"{name}-sends-{channel}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{channel}"},
                "summary": f"{name} publishes {title_of[channel]} to stream {stream_of[channel]}.",
                "messages": [_ref_message(channel, message_of[channel])],
                "x-fleet-worker": name,
            }
    sent_by_workers = {channel for role in roles.values() for channel in role.sends}
    for event_type in event_types:
        channel = channel_id(event_type)
        if channel in sent_by_workers:
            continue
        operations[f"publishers-send-{channel}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel}"},
            "summary": f"Services outside the fleet publish {event_type} to stream "
            f"{stream_of[channel]}, with Nats-Msg-Id = the envelope id.",
            "messages": [_ref_message(channel, message_of[channel])],
        }
    return dict(sorted(operations.items()))

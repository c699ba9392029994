"""The streams.yaml model: streams, their partitioning, and the durable consumers of each worker.

A field left out of the file is not controlled by the tool: the server's default applies on
create and whatever the server holds is never reported as drift.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StoreCompression,
    StreamConfig,
    SubjectTransform,
)
from pydantic import BaseModel, ConfigDict, Field

from fleet_runtime.topology.units import Count, Duration, Size

NAME_PATTERN = r"^[A-Za-z0-9_-]+$"
_NAME_RE = re.compile(NAME_PATTERN)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PartitionSpec(_Strict):
    """Split a stream into `count` ordered partitions by hashing tokens of the subject."""

    subjects: str = Field(
        description="Published subjects to partition, with one `*` per word, e.g. `trade.*.*`. "
        "Each is stored with one extra word, the partition number 0..count-1."
    )
    count: int = Field(ge=2, le=1024, description="Number of partitions (one consumer each).")
    key: list[int] = Field(
        default_factory=list,
        description="1-based indexes of the `*` wildcards hashed to pick the partition "
        "(default: the last wildcard, e.g. the bot id in `trade.<verb>.<bot_id>`).",
    )

    def key_wildcards(self) -> list[int]:
        """The wildcard indexes hashed into the partition number."""
        return self.key or [self.subjects.split(".").count("*")]

    def transform(self) -> SubjectTransform:
        """The subject transform: `trade.*.*` -> `trade.{{wildcard(1)}}….{{partition(4,2)}}`."""
        tokens: list[str] = []
        wildcard = 0
        for word in self.subjects.split("."):
            if word == "*":
                wildcard += 1
                tokens.append(f"{{{{wildcard({wildcard})}}}}")
            else:
                tokens.append(word)
        keys = ",".join(str(index) for index in self.key_wildcards())
        tokens.append(f"{{{{partition({self.count},{keys})}}}}")
        return SubjectTransform(src=self.subjects, dest=".".join(tokens))


class StreamSpec(_Strict):
    """One JetStream stream. Unset limits keep the server default (unlimited)."""

    subjects: list[str] = Field(min_length=1, description="Subjects the stream captures.")
    description: str | None = Field(default=None, description="Shown by `nats stream info`.")
    storage: Literal["file", "memory"] | None = Field(
        default=None, description="file survives restarts; memory does not. Cannot be changed."
    )
    retention: Literal["limits", "interest", "workqueue"] | None = Field(
        default=None,
        description="limits keeps messages until a limit; workqueue deletes on ack. "
        "Changing to or from workqueue needs a new stream.",
    )
    max_age: Duration | None = Field(default=None, description="Oldest message kept; 0 = no limit.")
    max_bytes: Size | None = Field(default=None, description="Total size kept, e.g. 10GiB.")
    max_msgs: Count | None = Field(default=None, description="Message count kept.")
    max_msgs_per_subject: Count | None = Field(
        default=None, description="Messages kept per subject (1 = last value only)."
    )
    max_msg_size: Size | None = Field(default=None, description="Largest message accepted.")
    discard: Literal["old", "new"] | None = Field(
        default=None,
        description="At a limit: old drops the oldest messages, new refuses the publish.",
    )
    replicas: int | None = Field(default=None, ge=1, le=5, description="Copies in a cluster.")
    duplicate_window: Duration | None = Field(
        default=None, description="Window in which a repeated Nats-Msg-Id is dropped."
    )
    deny_delete: bool | None = Field(
        default=None, description="Refuse deleting single messages. Cannot be turned off."
    )
    deny_purge: bool | None = Field(
        default=None, description="Refuse purging the stream. Cannot be turned off."
    )
    allow_rollup: bool | None = Field(
        default=None, description="Allow the Nats-Rollup header to replace older messages."
    )
    compression: Literal["none", "s2"] | None = Field(
        default=None, description="On-disk compression of file storage."
    )
    partition: PartitionSpec | None = Field(
        default=None, description="Subject transform that adds a partition word."
    )

    def nats_values(self) -> dict[str, Any]:
        """The nats-py StreamConfig fields this file controls (unset fields left out)."""
        values: dict[str, Any] = {
            "description": self.description,
            "storage": StorageType(self.storage) if self.storage else None,
            "retention": RetentionPolicy(self.retention) if self.retention else None,
            "max_age": self.max_age,
            "max_bytes": self.max_bytes,
            "max_msgs": self.max_msgs,
            "max_msgs_per_subject": self.max_msgs_per_subject,
            "max_msg_size": self.max_msg_size,
            "discard": DiscardPolicy(self.discard) if self.discard else None,
            "num_replicas": self.replicas,
            "duplicate_window": self.duplicate_window,
            "deny_delete": self.deny_delete,
            "deny_purge": self.deny_purge,
            "allow_rollup_hdrs": self.allow_rollup,
            "compression": StoreCompression(self.compression) if self.compression else None,
        }
        controlled = {key: value for key, value in values.items() if value is not None}
        # Subjects and partitioning are always controlled: consumers depend on both.
        controlled["subjects"] = list(self.subjects)
        controlled["subject_transform"] = self.partition.transform() if self.partition else None
        return controlled

    def stream_config(self, name: str) -> StreamConfig:
        """The nats-py config to create this stream; unset fields get the server default."""
        return StreamConfig(name=name).evolve(**self.nats_values())


class ConsumerSpec(_Strict):
    """One durable pull consumer of a worker on one stream."""

    worker: str = Field(pattern=NAME_PATTERN, description="Worker that binds to the durable.")
    durable: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="Durable name; defaults to the worker name. With partitions the durables "
        "are `<durable>-p<k>`.",
    )
    stream: str = Field(description="Stream the consumer reads.")
    filter_subjects: list[str] = Field(
        default_factory=list,
        description="Subjects delivered (as published; the partition word is added per "
        "partition). Empty = the whole stream.",
    )
    deliver_policy: Literal["all", "new", "last", "last_per_subject"] | None = Field(
        default=None, description="Where a new durable starts. Cannot be changed."
    )
    ack_policy: Literal["explicit", "all", "none"] | None = Field(
        default=None, description="How messages are acknowledged. Cannot be changed."
    )
    ack_wait: Duration | None = Field(
        default=None, description="Redelivery after this long without an ack (no backoff)."
    )
    max_deliver: int | None = Field(
        default=None, ge=-1, description="Deliveries before giving up (-1 = unlimited)."
    )
    backoff: list[Duration] | None = Field(
        default=None,
        description="Redelivery delays; replaces ack_wait, last value repeats; "
        "must not be longer than max_deliver.",
    )
    max_ack_pending: int | None = Field(
        default=None, ge=-1, description="Unacked messages in flight before delivery stops."
    )
    partitions: int | None = Field(
        default=None,
        ge=1,
        description="Partition count of the stream; one durable per partition.",
    )
    description: str | None = Field(default=None, description="Shown by `nats consumer info`.")

    @property
    def name(self) -> str:
        """The durable name (or the base of the per-partition names)."""
        return self.durable or self.worker

    def partition_numbers(self) -> list[int | None]:
        """[None] for an unpartitioned consumer, else 0..partitions-1."""
        if not self.partitions or self.partitions == 1:
            return [None]
        return list(range(self.partitions))

    def durable_names(self) -> list[str]:
        """The durable consumer names the server holds for this declaration."""
        return [durable_name(self.name, k) for k in self.partition_numbers()]

    def filters_for(self, partition: int | None) -> list[str]:
        """Filter subjects of one partition's durable (the partition word appended)."""
        if partition is None:
            return list(self.filter_subjects)
        return [f"{subject}.{partition}" for subject in self.filter_subjects]

    def nats_values(self, partition: int | None = None) -> dict[str, Any]:
        """The nats-py ConsumerConfig fields this file controls (unset fields left out)."""
        values: dict[str, Any] = {
            "description": self.description,
            "deliver_policy": DeliverPolicy(self.deliver_policy) if self.deliver_policy else None,
            "ack_policy": AckPolicy(self.ack_policy) if self.ack_policy else None,
            "ack_wait": self.ack_wait,
            "max_deliver": self.max_deliver,
            "backoff": list(self.backoff) if self.backoff else None,
            "max_ack_pending": self.max_ack_pending,
        }
        controlled = {key: value for key, value in values.items() if value is not None}
        # Filters are always controlled; the single-filter field is cleared so the two never mix.
        controlled["filter_subjects"] = self.filters_for(partition) or None
        controlled["filter_subject"] = None
        return controlled

    def consumer_config(self, partition: int | None = None) -> ConsumerConfig:
        """The nats-py config of this durable (or of one partition's durable)."""
        name = durable_name(self.name, partition)
        return ConsumerConfig(durable_name=name).evolve(**self.nats_values(partition))


def durable_name(base: str, partition: int | None) -> str:
    """`trade-recorder` or, for partition 2, `trade-recorder-p2`."""
    return base if partition is None else f"{base}-p{partition}"


def valid_name(name: str) -> bool:
    """Stream and durable names: letters, digits, `_` and `-` (no dots or wildcards)."""
    return bool(_NAME_RE.match(name))


@dataclass(frozen=True)
class Durable:
    """One concrete durable consumer on the server (a partition of a ConsumerSpec or all of it)."""

    stream: str
    name: str
    partition: int | None
    spec: ConsumerSpec

    def consumer_config(self) -> ConsumerConfig:
        """The nats-py config a worker binds to (workers never create durables)."""
        return self.spec.consumer_config(self.partition)


class Topology(_Strict):
    """The whole file: streams by name and the consumers of every worker."""

    streams: dict[str, StreamSpec] = Field(description="Streams by name (e.g. TRADES).")
    consumers: list[ConsumerSpec] = Field(
        default_factory=list, description="Durable consumers, one entry per worker and stream."
    )

    def consumers_for(self, worker: str) -> list[ConsumerSpec]:
        """The consumer declarations of one worker, in file order."""
        return [spec for spec in self.consumers if spec.worker == worker]

    def durables(self) -> list[Durable]:
        """Every durable consumer the file declares, partitions expanded."""
        return [
            Durable(spec.stream, durable_name(spec.name, k), k, spec)
            for spec in self.consumers
            for k in spec.partition_numbers()
        ]

    def durables_for(self, worker: str) -> list[Durable]:
        """The durables one worker binds to, partitions expanded."""
        return [durable for durable in self.durables() if durable.spec.worker == worker]

    def workers(self) -> list[str]:
        """Worker names in file order."""
        return list(dict.fromkeys(spec.worker for spec in self.consumers))

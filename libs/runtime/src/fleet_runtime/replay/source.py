"""Which stream and filter a replay reads, and the refusals that come before any work."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from fleet_runtime.binding import Subscription
from fleet_runtime.errors import ConfigError, ConsumerMissing
from fleet_runtime.replay.target import ReplayRefused, ReplayTarget

if TYPE_CHECKING:
    from fleet_runtime.replay.plan import ReplayPlan


async def resolve_sources(
    js: JetStreamContext, target: ReplayTarget, plan: ReplayPlan
) -> list[tuple[Subscription, str]]:
    """Each subscription to replay with its filter subject; refuse what cannot be replayed.

    A worker with several subscriptions (one per stream) is replayed whole: a start
    sequence or a partition would not name one place in all of its streams.
    """
    subs = list(target.subscriptions())
    if plan.from_archive and plan.partial:
        raise ReplayRefused(
            "--from-archive rebuilds from the first event; --since, --from-seq and --partition "
            "start later",
            fix="pass --from-archive alone",
        )
    if len(subs) > 1 and (plan.from_seq is not None or plan.partition is not None):
        raise ReplayRefused(
            f"{target.description} is built from {len(subs)} streams; --from-seq and "
            "--partition name a place in one stream",
            fix="replay everything with --all",
        )
    if len({sub.stream for sub in subs}) != len(subs):
        raise ReplayRefused(
            "the worker has two subscriptions on one stream; replay reads one per stream",
            fix="give each subscription its own stream",
        )
    return [await _resolve_one(js, target, plan, sub) for sub in subs]


async def _resolve_one(
    js: JetStreamContext, target: ReplayTarget, plan: ReplayPlan, sub: Subscription
) -> tuple[Subscription, str]:
    durable = sub.durable if plan.partition is None else f"{sub.durable}-p{plan.partition}"
    every_partition = False
    try:
        stream = await js.stream_info(sub.stream)
        try:
            info = await js.consumer_info(sub.stream, durable)
        except NotFoundError:
            if plan.partition is not None:
                raise
            # A partitioned worker: its durables are <durable>-p<k>.
            info = await js.consumer_info(sub.stream, f"{durable}-p0")
            every_partition = True
    except NotFoundError:
        raise ConsumerMissing(
            f"consumer {durable} on stream {sub.stream} is not on the server",
            fix="run `fleet topology apply` first (and check --partition)",
        ) from None
    filters = list(info.config.filter_subjects or [])
    if info.config.filter_subject:
        filters.append(info.config.filter_subject)
    if len(filters) > 1:
        raise ReplayRefused(
            f"consumer {info.name} has {len(filters)} filter subjects; replay reads one",
            fix="give the consumer a single filter subject in streams.yaml",
        )
    subject = filters[0] if filters else ">"
    if every_partition:
        # Partition k filters <subject>.<k>: every partition is the last token's wildcard.
        subject = subject.rsplit(".", 1)[0] + ".*"
    first, last = stream.state.first_seq, stream.state.last_seq
    if plan.from_seq is not None and not first <= plan.from_seq <= last:
        raise ConfigError(
            f"--from-seq {plan.from_seq} is outside stream {sub.stream}, which holds "
            f"sequences {first}..{last}",
            fix=f"pass a sequence between {first} and {last}, or --all",
        )
    refusal = target.partial_refusal()
    if refusal is not None and plan.partial:
        raise ReplayRefused(
            f"a partial rebuild of {target.description} would be wrong: {refusal}",
            fix="replay everything with --all",
        )
    # A target may carry a stream's history past retention over from live (e.g. candles);
    # with the archive, the archive checks decide (``archive.archive_start``).
    carried = sub.stream in getattr(target, "keeps_history_of", frozenset())
    if refusal is not None and first > 1 and not carried and not plan.from_archive:
        raise ReplayRefused(
            f"stream {sub.stream} no longer holds sequences 1..{first - 1} (retention), "
            f"and {target.description} needs every event: {refusal}",
            fix="rebuild from the stream archive too: add --from-archive",
        )
    return sub, subject

"""`fleet replay NAME`: rebuild a worker's store from its streams while the worker keeps running.

A worker offers a rebuild through ``WorkerSpec.replay`` (its store's shadow/swap adapter,
driven by ``fleet_runtime.replay.ReplayEngine``); ``libs/`` never imports a service.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import typer

from fleet_runtime.errors import ConfigError
from fleet_runtime.heap import DEFAULT_GEN0_THRESHOLD, settle_heap
from fleet_runtime.logs import configure_logging
from fleet_runtime.replay import (
    Interrupt,
    ReplayEngine,
    ReplayFactory,
    ReplayInterrupted,
    ReplayPlan,
    ReplayReport,
    replay_factory,
)
from fleet_runtime.replay.archive import archive_provider
from fleet_runtime.replay.lock import holder_name
from fleet_runtime.replay.progress import RichProgress
from fleet_runtime.settings import WorkerSettings, load_settings
from fleet_runtime.topology.units import parse_duration
from fleet_runtime.worker import worker_nats
from fleet_runtime.workers import WorkerSpec, get_worker


def parse_since(value: str) -> datetime:
    """A duration back from now (``24h``) or a time (``2026-05-01T12:00:00Z``), as UTC."""
    try:
        return datetime.now(UTC) - timedelta(seconds=parse_duration(value))
    except ValueError:
        pass
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            f"--since {value!r} is neither a duration nor a time",
            fix="pass a duration such as 24h or 90m, or an ISO time such as 2026-05-01T12:00Z",
        ) from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def replay(
    name: str = typer.Argument(..., help="Worker name, e.g. trade-recorder."),
    everything: bool = typer.Option(False, "--all", help="Replay the whole stream (default)."),
    since: str | None = typer.Option(
        None, "--since", help="Start at a duration ago (24h, 90m) or at a time (ISO 8601)."
    ),
    from_seq: int | None = typer.Option(None, "--from-seq", help="Start at this stream sequence."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Build the shadow and compare it with live; swap nothing."
    ),
    keep_old: bool = typer.Option(
        False, "--keep-old", help="Keep the replaced tables under a dated name."
    ),
    drop_old: bool = typer.Option(
        False, "--drop-old", help="Only remove what earlier --keep-old replays kept."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before swapping."),
    partition: int | None = typer.Option(
        None, "--partition", help="Replay one partition's consumer (<durable>-p<k>)."
    ),
    batch_size: int | None = typer.Option(
        None,
        "--batch-size",
        min=1,
        help="Events per store write while replaying (default: the store's, else 5000).",
    ),
    from_archive: bool = typer.Option(
        False,
        "--from-archive",
        help="Read the archived stream segments (backup-runner's S3) first, then the stream "
        "after them: rebuilds past stream retention.",
    ),
) -> None:
    """Rebuild a worker's store from its streams into a shadow, then swap it in atomically."""
    spec = get_worker(name)
    starts = [
        f
        for f, on in (("--all", everything), ("--since", since), ("--from-seq", from_seq))
        if on not in (None, False)
    ]
    if len(starts) > 1:
        raise ConfigError(f"{' and '.join(starts)} cannot be combined", fix="pick one start point")
    if from_seq is not None and from_seq < 1:
        raise ConfigError(f"--from-seq {from_seq} is not a stream sequence", fix="pass N >= 1")
    factory = replay_factory(spec)
    start = None if since is None else parse_since(since)
    settings = load_settings(spec.settings_cls)
    if isinstance(settings, WorkerSettings):
        configure_logging(settings.log_level, settings.log_format)
    later = [f for f in starts if f != "--all"] + ["--partition"] * (partition is not None)
    if from_archive and (later or drop_old):
        raise ConfigError(
            f"--from-archive rebuilds from the first event; {(later or ['--drop-old'])[0]} "
            "cannot be combined with it",
            fix="pass --from-archive without --since, --from-seq, --partition or --drop-old",
        )
    plan = ReplayPlan(
        from_seq=from_seq,
        since=start,
        dry_run=dry_run,
        keep_old=keep_old,
        partition=partition,
        from_archive=from_archive,
    )
    if not (yes or dry_run or drop_old):
        if not sys.stdin.isatty():
            raise ConfigError(
                "a replay swaps the live store and needs a confirmation",
                fix="pass --yes (or --dry-run to only compare)",
            )
        typer.confirm(f"Rebuild {spec.name}'s store and swap it in while it runs?", abort=True)
    interrupt = Interrupt()
    work = _run(spec, factory, settings, plan, interrupt, drop_old=drop_old, batch_size=batch_size)
    try:
        # Signals are handled by the loop from the start (``fleet_runtime.replay.interrupt``).
        asyncio.run(interrupt.around(work))
    except ReplayInterrupted as stopped:
        _interrupted(stopped.exit_code)
    except KeyboardInterrupt:
        # Ctrl-C before the replay's own handler was installed (asyncio.run's cancels).
        _interrupted(130)
    if interrupt.signum is not None and not (dry_run or drop_old):
        typer.secho(
            "a signal came after the swap had started to commit: the rebuilt state is live",
            fg=typer.colors.YELLOW,
            err=True,
        )


def _interrupted(code: int) -> None:
    typer.secho("interrupted: the live store is untouched", fg=typer.colors.YELLOW, err=True)
    sys.exit(code)


async def _run(
    spec: WorkerSpec,
    factory: ReplayFactory,
    settings: Any,
    plan: ReplayPlan,
    interrupt: Interrupt,
    *,
    drop_old: bool,
    batch_size: int | None,
) -> None:
    archive = None
    if plan.from_archive:
        provider, open_archive = archive_provider()
        archive = await open_archive(load_settings(provider.settings_cls))
    target = await factory(settings)
    try:
        async with target.lock(holder_name(spec.name)):
            if drop_old:
                dropped = await target.drop_old()
                typer.echo(f"dropped: {', '.join(dropped)}" if dropped else "nothing kept to drop")
                return
            # A replay owns its process, as a worker does: the same collector settings.
            settle_heap(getattr(settings, "gc_gen0_threshold", DEFAULT_GEN0_THRESHOLD))
            nc = await worker_nats(settings, f"{spec.name}-replay", user=spec.name)
            progress = RichProgress(f"replay {spec.name}")
            try:
                engine = ReplayEngine(
                    nc,
                    target,
                    batch_size=batch_size,
                    progress=progress,
                    archive=archive,
                    interrupt=interrupt,
                )
                report = await engine.run(plan)
            finally:
                progress.close()
                await nc.drain()
            _summarise(spec, target.description, report)
    finally:
        await target.close()
        if archive is not None:
            await archive.close()


def _summarise(spec: WorkerSpec, where: str, report: ReplayReport) -> None:
    upto = f"stream seq {report.position:,}"
    if len(report.positions) > 1:
        upto = ", ".join(f"{stream} seq {seq:,}" for stream, seq in report.positions.items())
    typer.echo(
        f"applied {report.applied:,} events up to {upto} in "
        f"{report.seconds:.1f} s ({report.rate:,.0f} events/s); skipped: {report.invalid} "
        f"undecodable, {report.rejected} rejected"
    )
    if report.archived:
        read = ", ".join(f"{stream} 1-{seq:,}" for stream, seq in report.archived.items())
        typer.echo(
            f"from the archive: {report.from_archive:,} events ({read}); then the streams "
            "after them"
        )
    if report.compared is not None:
        cmp = report.compared
        typer.echo(f"dry run: live at seq {cmp.live_position:,}, shadow at {cmp.shadow_position:,}")
        for t in cmp.tables:
            mark = "same" if t.same else "DIFFERENT"
            typer.echo(
                f"  {t.name:<24} live {t.live_rows:>10,} rows  shadow {t.shadow_rows:>10,} rows"
                f"  {mark}"
            )
        differ = sum(not t.same for t in cmp.tables)
        typer.echo(
            "live matches the replay"
            if cmp.same
            else f"{differ} of {len(cmp.tables)} tables differ; nothing swapped"
        )
        return
    swap = report.swap
    if swap is not None:
        kept = f"; replaced tables kept as {swap.kept_as}" if swap.kept_as else ""
        typer.echo(
            f"swapped {where} at seq {swap.position:,} (live worker was at "
            f"{swap.live_checkpoint:,}) in {swap.pause_s * 1000:.0f} ms after "
            f"{report.swap_attempts} attempt(s){kept}"
        )

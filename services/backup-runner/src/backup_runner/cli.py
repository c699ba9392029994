"""`fleet backup list | show | verify | restore | prune`: backups in S3."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from backup_runner.app import object_store
from backup_runner.archive_chain import pruned_through, segment_range
from backup_runner.archive_retention import (
    SegmentFate,
    StreamPlan,
    apply_plan,
    plan_archive,
    pruned_past,
)
from backup_runner.encryption import parse_key
from backup_runner.errors import BackupRefused
from backup_runner.manifest import (
    Manifest,
    backup_prefix,
    list_manifests,
    manifest_key,
    read_manifest,
    verify_object,
)
from backup_runner.objects import MinioObjectStore, ObjectMissing
from backup_runner.restore_mongodb import restore_mongodb
from backup_runner.restore_postgres import restore_postgres
from backup_runner.retention import RetentionPolicy, decide
from backup_runner.runner import find_pg_dump
from backup_runner.settings import BackupRunnerSettings
from backup_runner.verification import (
    Verification,
    read_verification,
    record_verification,
    verified_ids,
)
from fleet_runtime.errors import StoreUnavailable, UserError
from fleet_runtime.settings import load_settings
from fleet_runtime.topology.loader import load_topology

app = typer.Typer(
    help="Backups in S3 (settings from the BACKUP_RUNNER_* environment).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
IdArgument = Annotated[str, typer.Argument(help="Backup id (see `fleet backup list`).")]


def _store() -> MinioObjectStore:
    return object_store(load_settings(BackupRunnerSettings))


def _unreachable(exc: StoreUnavailable) -> UserError:
    return UserError(
        str(exc),
        fix="check BACKUP_RUNNER_S3_ENDPOINT, BACKUP_RUNNER_S3_ACCESS_KEY/SECRET_KEY and "
        "BACKUP_RUNNER_S3_BUCKET",
    )


def _manifest(store: MinioObjectStore, backup_id: str) -> Manifest:
    try:
        return read_manifest(store, backup_id)
    except ObjectMissing:
        raise UserError(
            f"no backup {backup_id!r} in bucket {store.bucket} (no manifest: an interrupted "
            "run is not a backup)",
            fix="pick an id from `fleet backup list`",
        ) from None
    except StoreUnavailable as exc:
        raise _unreachable(exc) from None


@app.command("list")
def list_cmd() -> None:
    """One line per backup that has a manifest, oldest first."""
    store = _store()
    try:
        manifests = list_manifests(store)
    except StoreUnavailable as exc:
        raise _unreachable(exc) from None
    if not manifests:
        typer.echo(f"no backups in bucket {store.bucket}")
        return
    typer.echo(
        f"{'BACKUP ID':<36}  {'TARGET':<9}  {'SCOPE':<12}  {'OBJECTS':>7}  "
        f"{'BYTES':>12}  FINISHED (UTC)"
    )
    for m in manifests:
        typer.echo(
            f"{m.backup_id:<36}  {m.target:<9}  {m.scope or 'all':<12}  {len(m.objects):>7}  "
            f"{m.size_bytes:>12}  {m.finished_at:%Y-%m-%d %H:%M:%S}"
            + ("  GAPS" if m.gaps else "")
            + _verified_mark(store, m.backup_id)
        )


def _verified_mark(store: MinioObjectStore, backup_id: str) -> str:
    verification = read_verification(store, backup_id)
    if verification is None:
        return ""
    state = "verified" if verification.ok else "VERIFY FAILED"
    return f"  {state} {verification.verified_at:%Y-%m-%d %H:%M}"


@app.command("show")
def show_cmd(backup_id: IdArgument) -> None:
    """The manifest of one backup: objects, positions, tool versions, gaps."""
    typer.echo(_manifest(_store(), backup_id).to_bytes().decode())


@app.command("verify")
def verify_cmd(backup_id: IdArgument) -> None:
    """Re-read every object of a backup and check its size and sha256; exit 1 on a mismatch."""
    store = _store()
    manifest = _manifest(store, backup_id)
    problems = []
    pruned: dict[str, int] = {}  # per stream, the sequence retention pruned it through
    gone = 0
    with typer.progressbar(manifest.objects, label=f"verifying {backup_id}", file=None) as bar:
        for entry in bar:
            try:
                span = segment_range(entry.key) if manifest.target == "stream" else None
                if span is not None:
                    stream = entry.key.split("/")[1]
                    if stream not in pruned:
                        pruned[stream] = pruned_through(store, stream)
                    if span[1] <= pruned[stream]:
                        gone += 1  # removed by archive retention, on purpose
                        continue
                problem = verify_object(store, entry)
            except StoreUnavailable as exc:
                raise _unreachable(exc) from None
            if problem is not None:
                problems.append(problem)
    for gap in manifest.gaps:
        typer.echo(f"gap: {gap}")
    checked = len(manifest.objects) - gone
    outcome = Verification(
        backup_id=backup_id,
        verified_at=datetime.now(UTC),
        ok=not problems,
        objects_checked=checked,
        problems=problems,
    )
    try:
        # Retention keeps the newest backup of each target that verified intact.
        record_verification(store, outcome)
    except StoreUnavailable as exc:
        raise _unreachable(exc) from None
    if gone:
        through = ", ".join(f"{k} through {v}" for k, v in sorted(pruned.items()) if v)
        typer.echo(f"{gone} segments pruned by archive retention ({through}): not checked")
    if problems:
        for problem in problems:
            typer.secho(f"CORRUPT {problem}", fg=typer.colors.RED, err=True)
        typer.echo(f"backup {backup_id}: {len(problems)} of {len(manifest.objects)} objects fail")
        raise typer.Exit(1)
    typer.echo(
        f"backup {backup_id}: {checked} objects verified ({manifest.size_bytes} bytes listed)"
    )


@app.command("restore")
def restore_cmd(
    backup_id: IdArgument,
    into: Annotated[
        str, typer.Option("--into", help="URL of the PostgreSQL database or MongoDB server.")
    ],
    database: Annotated[
        str | None,
        typer.Option("--database", help="MongoDB: restore the backup's database under this name."),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Load into a non-empty target (replaces what it restores)."),
    ] = False,
) -> None:
    """Load a postgres or mongodb backup into an empty target (digests checked first)."""
    settings = load_settings(BackupRunnerSettings)
    store = object_store(settings)
    manifest = _manifest(store, backup_id)
    secret = settings.encryption_key
    key = parse_key(secret.get_secret_value()) if secret is not None else None
    label = f"restoring {backup_id}"
    try:
        with typer.progressbar(length=len(manifest.objects), label=label, file=None) as bar:
            if manifest.target == "mongodb":
                done = restore_mongodb(
                    manifest,
                    store,
                    url=into,
                    database=database,
                    force=force,
                    key=key,
                    loaded=bar.update,
                )
            else:
                done = restore_postgres(
                    manifest,
                    store,
                    dsn=into,
                    pg_restore=_pg_restore(settings),
                    force=force,
                    key=key,
                    loaded=bar.update,
                )
    except StoreUnavailable as exc:
        raise _unreachable(exc) from None
    typer.echo(f"restored backup {backup_id}: {', '.join(done.parts)} ({done.bytes} bytes)")
    for name, rows in sorted(manifest.positions.items()):
        typer.echo(f"  {name}: {rows}")
    typer.echo(
        "catch up: the restored checkpoints above are the stream positions the data reflects; "
        "replay each worker's stream from there (`fleet replay WORKER`) before serving reads."
    )
    for note in pruned_past(store, manifest, _durables(settings)):
        typer.secho(f"note: {note}", fg=typer.colors.YELLOW, err=True)


def _pg_restore(settings: BackupRunnerSettings) -> str:
    try:
        return str(Path(find_pg_dump(settings.pg_bin_dir)).with_name("pg_restore"))
    except BackupRefused as exc:
        raise UserError(str(exc), fix="set BACKUP_RUNNER_PG_BIN_DIR") from None


@app.command("prune")
def prune_cmd(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be deleted and why; delete nothing.")
    ] = False,
) -> None:
    """Delete backups (BACKUP_RUNNER_KEEP_*) and archived segments
    (BACKUP_RUNNER_ARCHIVE_KEEP_DAYS) that retention does not keep.

    The newest backup of every target and scope is always kept, and so is the newest
    that `fleet backup verify` last found intact. A segment goes only when
    it is older than the archive's retention and no kept backup's positions need it, and
    only from the start of a stream's archive (never a hole). A backup's manifest goes
    first, so a half-pruned one is never listed.
    """
    settings = load_settings(BackupRunnerSettings)
    store = object_store(settings)
    policy = RetentionPolicy(settings.keep_hourly, settings.keep_daily, settings.keep_monthly)
    now = datetime.now(UTC)
    try:
        manifests = list_manifests(store)
        verified = verified_ids(store, (m.backup_id for m in manifests))
        decision = decide(manifests, policy, verified)
        for backup_id, why in sorted(decision.keep.items()):
            typer.echo(f"keep   {backup_id}  ({why})")
        for backup_id in decision.prune:
            typer.echo(f"{'would prune' if dry_run else 'prune'}  {backup_id}")
            if not dry_run:
                store.delete(manifest_key(backup_id))
                for key in store.keys(backup_prefix(backup_id)):
                    store.delete(key)
        kept = [m for m in manifests if m.backup_id in decision.keep]
        days = settings.archive_keep_days
        plans = plan_archive(store, kept, _durables(settings), keep_days=days, now=now)
        for plan in plans:
            _echo_plan(plan, dry_run)
            if not dry_run:
                apply_plan(store, plan, now=now, keep_days=days)
    except StoreUnavailable as exc:
        raise _unreachable(exc) from None
    what = "would be pruned" if dry_run else "pruned"
    segments = sum(len(p.deleted) for p in plans)
    typer.echo(
        f"{len(decision.prune)} backups {what}, {len(decision.keep)} kept; "
        f"{segments} archived segments {what}, "
        f"{sum(len(p.segments) for p in plans) - segments} kept"
    )


def _durables(settings: BackupRunnerSettings) -> dict[str, Collection[str]]:
    """Durable name -> its streams, from streams.yaml ({} when it cannot be read: then a
    checkpoint that names no stream holds back every stream's segments)."""
    try:
        topology = load_topology(settings.streams_file)
    except UserError as exc:
        typer.echo(f"note: {exc}; checkpoints that name no stream keep every stream's "
                   "segments (set BACKUP_RUNNER_STREAMS_FILE)", err=True)  # fmt: skip
        return {}
    found: dict[str, set[str]] = {}
    for durable in topology.durables():
        found.setdefault(durable.name, set()).add(durable.stream)
    return dict(found)


def _echo_plan(plan: StreamPlan, dry_run: bool) -> None:
    """One line per run of segments with the same fate and reason."""
    runs: list[list[SegmentFate]] = []
    for fate in plan.segments:
        if runs and (runs[-1][-1].delete, runs[-1][-1].why) == (fate.delete, fate.why):
            runs[-1].append(fate)
        else:
            runs.append([fate])
    for run in runs:
        head = run[0]
        verb = ("would prune" if dry_run else "prune") if head.delete else "keep"
        count = f" ({len(run)} segments)" if len(run) > 1 else ""
        typer.echo(f"{verb}  {plan.stream} {head.first}-{run[-1].last}{count}  ({head.why})")
    if plan.pruned_through > plan.pruned_before:
        typer.echo(f"       {plan.stream} archive then starts at {plan.pruned_through + 1}")

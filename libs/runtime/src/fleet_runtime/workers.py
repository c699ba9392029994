"""Worker registry: each service declares a WorkerSpec in the `fleet.workers` entry-point group."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from pydantic_settings import BaseSettings

from fleet_runtime.diagnosis import StoreDiagnosis
from fleet_runtime.errors import ConfigError

ENTRY_POINT_GROUP = "fleet.workers"


@dataclass(frozen=True)
class WorkerCommand:
    """A subcommand of a worker's console script (``trade-recorder migrate``).

    ``main(argv)`` gets the arguments after the subcommand's name and returns the exit
    status; it imports what it needs (a store driver) only when called.
    """

    summary: str
    main: Callable[[list[str]], int]


@dataclass(frozen=True)
class WorkerSpec:
    """What the runtime and the CLI need to know of a worker, without importing its store driver.

    ``run(settings, partition)`` consumes until SIGTERM. It is None while a worker's
    handlers are not written yet: the CLI then says so plainly instead of pretending.
    """

    name: str
    store: str
    summary: str
    settings_cls: type[BaseSettings]
    run: Callable[[Any, int | None], Coroutine[Any, Any, None]] | None = None
    consumes: tuple[str, ...] = field(default_factory=tuple)
    publishes: tuple[str, ...] = field(default_factory=tuple)
    """Event types the worker publishes itself (market-ingest: ``market.candle``); dead
    letters are not listed: every worker may publish those."""
    also_publishes: tuple[str, ...] = field(default_factory=tuple)
    """Event types the worker publishes besides its outputs, which services outside the
    fleet publish too (backup-runner's schedule sends ``ops.backup.requested``): its NATS
    user may publish them; the contract keeps them as the publishers' events."""
    reads_streams: tuple[str, ...] = field(default_factory=tuple)
    """Streams the worker reads beyond its durables, with short-lived (ephemeral) consumers
    and message gets (backup-runner archives streams); ``"*"``: every stream. Its NATS
    user is granted exactly that (``fleet security generate``)."""
    dev_setup: Callable[[Mapping[str, str]], Awaitable[Mapping[str, str]]] | None = None
    """For `fleet dev up`: given the launcher's ``FLEET_*`` variables (superuser URLs),
    prepare the store (databases, roles, migrations) and return the worker's own env."""
    commands: Mapping[str, WorkerCommand] = field(default_factory=dict, hash=False, compare=False)
    """Subcommands of the worker's console script besides running it (e.g. ``migrate``)."""
    diagnose_store: StoreDiagnosis | None = field(default=None, hash=False, compare=False)
    """For `fleet doctor`: the service's read-only checks of its store (see
    ``fleet_runtime.diagnosis``); the runtime checks NATS, the topology and the durables."""
    replay: str | Callable[[Any], Awaitable[Any]] | None = None
    """For `fleet replay`: ``"module:function"`` or the function itself, taking the
    worker's settings and returning its ``fleet_runtime.replay.ReplayTarget``. A path
    string keeps the store driver unimported until a replay runs."""
    archive: str | Callable[[Any], Awaitable[Any]] | None = None
    """For `fleet replay --from-archive`: ``"module:function"`` or the function itself, taking
    the worker's settings and returning a ``fleet_runtime.replay.archive.StreamArchive`` over
    the stream segments it archived (backup-runner)."""
    fleet_commands: Callable[[], Any] | None = None
    """The worker's `fleet` command group: returns a ``typer.Typer`` that `fleet` mounts under
    a group of its own (`fleet backup`), loaded only when that group runs."""

    @property
    def implemented(self) -> bool:
        """Whether the worker has handlers and can be started."""
        return self.run is not None


def discover_workers() -> Mapping[str, WorkerSpec]:
    """All workers installed in this environment, by name, from their entry points."""
    found: dict[str, WorkerSpec] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        spec = ep.load()
        if not isinstance(spec, WorkerSpec):
            raise ConfigError(
                f"entry point {ep.name!r} in group {ENTRY_POINT_GROUP} is {type(spec).__name__}, "
                "not a WorkerSpec",
                fix=f"point the entry point at a module-level WorkerSpec ({ep.value})",
            )
        found[spec.name] = spec
    return dict(sorted(found.items()))


def get_worker(name: str) -> WorkerSpec:
    """The worker called ``name``, or a clear error listing the installed ones.

    Only its own entry point is loaded when the name matches one (each service names its
    entry point after its worker): starting one worker does not import the others'
    store drivers.
    """
    for ep in entry_points(group=ENTRY_POINT_GROUP, name=name):
        spec = ep.load()
        if isinstance(spec, WorkerSpec) and spec.name == name:
            return spec
    workers = discover_workers()
    try:
        return workers[name]
    except KeyError:
        known = ", ".join(workers) or "none"
        raise ConfigError(
            f"unknown worker {name!r} (installed workers: {known})",
            fix="pick one of the installed workers, or install the service that provides it",
        ) from None

"""How a PostgreSQL worker starts: migrate if asked, open its store, serve; and `fleet dev`.

Both PostgreSQL workers start the same way; each passes its own store, schema role and
subscriptions. The store modules (and asyncpg) are imported by the caller only when
the worker runs, so listing workers needs no driver.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import SecretStr

from fleet_runtime.errors import ConfigError
from fleet_runtime.worker import serve

from .roles import dsn_with, ensure_database

DEV_DATABASE = "tradefleet"


class PostgresStore(Protocol):
    """What the wiring needs of a store adapter."""

    async def probe(self) -> None:
        """Fail fast if the server, schema or grants are missing."""

    async def close(self) -> None:
        """Release connections."""


class PostgresWorkerSettings(Protocol):
    """The settings fields every PostgreSQL worker has."""

    postgres_dsn: SecretStr
    owner_dsn: SecretStr | None
    migrate_on_start: bool


@dataclass(frozen=True)
class PostgresWorker:
    """One PostgreSQL worker's start-up, by the modules that hold its store and handlers.

    ``store_module`` provides ``ROLE``, ``ensure_roles(owner_dsn)``,
    ``run_migrations(owner_dsn)`` and the adapter class ``store_class`` with an async
    ``connect(dsn)``; ``handlers_module`` provides ``subscriptions(store)``. They are
    imported when the worker runs, not when the CLI lists workers.
    """

    worker: str
    env_prefix: str
    store_module: str
    store_class: str
    handlers_module: str
    partial_refusal: str | None = None
    """Why a replay from a later point than the stream's start would be wrong, if it would."""

    def _store(self) -> Any:
        return importlib.import_module(self.store_module)

    async def run(self, settings: Any, partition: int | None) -> None:
        """Migrate if asked, open the store and consume until SIGTERM."""
        config: PostgresWorkerSettings = settings
        store_mod = self._store()
        if config.migrate_on_start:
            if config.owner_dsn is None:
                raise ConfigError(
                    f"{self.env_prefix}MIGRATE_ON_START is set but {self.env_prefix}OWNER_DSN "
                    "is not",
                    fix=f"set {self.env_prefix}OWNER_DSN to a DSN of the schema owner role",
                )
            await store_mod.run_migrations(config.owner_dsn.get_secret_value())
        adapter = getattr(store_mod, self.store_class)
        store: PostgresStore = await adapter.connect(config.postgres_dsn.get_secret_value())
        handlers = importlib.import_module(self.handlers_module)
        try:
            await serve(
                worker=self.worker,
                settings=settings,
                subscriptions=handlers.subscriptions(store),
                store_probe=store.probe,
                partition=partition,
            )
        finally:
            await store.close()

    async def replay_target(self, settings: Any) -> Any:
        """For `fleet replay`: the schema's ``fleet_pgmigrate.shadow.PostgresReplayTarget``.

        It connects as the owner role (it creates the shadow schema and moves tables).
        """
        from .shadow import PostgresReplayTarget  # noqa: PLC0415 - only when replaying

        config: PostgresWorkerSettings = settings
        if config.owner_dsn is None:
            raise ConfigError(
                f"replaying {self.worker} needs {self.env_prefix}OWNER_DSN (it builds a shadow "
                "schema and swaps tables)",
                fix=f"set {self.env_prefix}OWNER_DSN to a DSN of the schema owner role",
            )
        store_mod = self._store()
        adapter = getattr(store_mod, self.store_class)
        handlers = importlib.import_module(self.handlers_module)

        async def open_store(dsn: str, schema: str) -> Any:
            return await adapter.connect(dsn, schema=schema)

        return PostgresReplayTarget(
            owner_dsn=config.owner_dsn.get_secret_value(),
            schema=store_mod.SCHEMA,
            migrations=store_mod.MIGRATIONS,
            open_store=open_store,
            bind=handlers.subscriptions,
            refusal=self.partial_refusal,
        )

    async def dev_setup(self, fleet_env: Mapping[str, str]) -> Mapping[str, str]:
        """For `fleet dev up`: database, role and migrations on the launcher's PostgreSQL."""
        store_mod = self._store()
        admin = fleet_env["FLEET_POSTGRES_DSN"]
        await ensure_database(admin, DEV_DATABASE)
        owner = dsn_with(admin, database=DEV_DATABASE)
        await store_mod.ensure_roles(owner)
        await store_mod.run_migrations(owner)
        return {f"{self.env_prefix}POSTGRES_DSN": dsn_with(owner, user=store_mod.ROLE)}

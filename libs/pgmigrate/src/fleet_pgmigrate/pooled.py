"""The part every PostgreSQL worker store shares: a small pool on its schema, a probe of
the schema and grants, and outage errors translated into ``StoreUnavailable``."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import ClassVar, Self

import asyncpg

from fleet_pgmigrate.outage import open_pool, probe_schema, unavailable_on_outage


class PooledStore:
    """A worker's store on a small asyncpg pool; a subclass names its schema and service.

    ``init_connection`` runs on every new connection (e.g. to create session-local
    temporary tables the store writes through).
    """

    SCHEMA: ClassVar[str]
    SERVICE: ClassVar[str]

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @staticmethod
    async def init_connection(conn: asyncpg.Connection) -> None:
        """Nothing by default."""

    @classmethod
    async def connect(
        cls, dsn: str, *, command_timeout: float = 60.0, schema: str | None = None
    ) -> Self:
        """Open the pool on ``schema`` (a replay's shadow; the live schema by default).

        An unreachable server raises StoreUnavailable.
        """
        pool = await open_pool(
            dsn,
            schema=cls.SCHEMA,
            search_path=schema or cls.SCHEMA,
            service=cls.SERVICE,
            command_timeout=command_timeout,
            init=cls.init_connection,
        )
        return cls(pool)

    def translated_errors(self) -> AbstractAsyncContextManager[None]:
        """Outages and a missing schema or grant become StoreUnavailable (never dead letters)."""
        return unavailable_on_outage(self.SCHEMA, self.SERVICE)

    async def close(self) -> None:
        """Close the pool."""
        await self._pool.close()

    async def probe(self) -> None:
        """Fail fast if the server, the schema or the grants are missing."""
        await probe_schema(self._pool, self.SCHEMA, self.SERVICE)

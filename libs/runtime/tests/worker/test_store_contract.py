"""The store contract suite, run against the runtime's PostgreSQL test store."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from runtime_testkit.store import PgTestStore

from fleet_testing.contract import StoreContract


class TestPgTestStoreContract(StoreContract):
    @pytest.fixture
    async def contract_store(self, postgres_database: str) -> AsyncIterator[PgTestStore]:
        store = await PgTestStore.open(postgres_database)
        try:
            yield store
        finally:
            await store.close()

"""The image-builder store with two daemons on one PostgreSQL database (two PGDatabase instances, each
with its own pool): the quota holds across them, and concurrent updates of one blueprint get
distinct consecutive versions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from osbuildd.imagebuilder.store import DatabaseImageBuilderStore, QuotaGate
from osbuildd.queue.db_pg import PGDatabase

ORG = "000000"
NOW = 1_800_000_000.0
DAY = 86400.0


class OverQuota(Exception):
    pass


@pytest.fixture
async def daemons(pg_url: str) -> AsyncIterator[tuple[DatabaseImageBuilderStore, DatabaseImageBuilderStore]]:
    first = await PGDatabase.open(pg_url, pool_size=8, application_name="osbuildd-test-a")
    second = await PGDatabase.open(pg_url, pool_size=8, application_name="osbuildd-test-b")
    try:
        # every pool connection open beforehand, so the concurrent calls below overlap rather than
        # queue behind connection set-up
        await asyncio.gather(*(db.conn.execute_fetchall("SELECT pg_sleep(0.05)")
                               for db in (first, second) for _ in range(8)))
        yield DatabaseImageBuilderStore(first), DatabaseImageBuilderStore(second)
    finally:
        await first.close()
        await second.close()


def gate(limit: int) -> QuotaGate:
    def check(count: int) -> None:
        if count >= limit:
            raise OverQuota(count)
    return (14 * DAY, check)


async def test_the_quota_holds_across_daemons(
        daemons: tuple[DatabaseImageBuilderStore, DatabaseImageBuilderStore]) -> None:
    limit, tries = 3, 16
    stores = [daemons[i % 2] for i in range(tries)]
    # one compose already counted; each try checks and inserts in one transaction
    await daemons[0].insert_compose(ORG, str(uuid.uuid4()), {}, created_at=NOW - DAY)
    results = await asyncio.gather(
        *(s.insert_compose(ORG, str(uuid.uuid4()), {}, created_at=NOW, quota=gate(limit))
          for s in stores), return_exceptions=True)
    accepted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(r, OverQuota) for r in refused), refused
    assert len(accepted) == limit - 1 and len(refused) == tries - (limit - 1)
    for store in daemons:
        assert await store.count_composes_since(ORG, 14 * DAY, now=NOW) == limit
    # another organisation's quota is its own
    other = await daemons[1].insert_compose("000001", str(uuid.uuid4()), {}, created_at=NOW, quota=gate(1))
    assert other.org_id == "000001"


async def test_concurrent_blueprint_updates_get_consecutive_versions(
        daemons: tuple[DatabaseImageBuilderStore, DatabaseImageBuilderStore]) -> None:
    bp = await daemons[0].create_blueprint(ORG, "web", {"customizations": {}})
    updates = 12
    results = await asyncio.gather(
        *(daemons[i % 2].update_blueprint(ORG, bp.id, "web", {"n": i}) for i in range(updates)))
    assert sorted(r.version for r in results) == list(range(2, updates + 2))
    for store in daemons:
        versions = await store.blueprint_versions(ORG, bp.id)
        assert [v.version for v in versions] == list(range(1, updates + 2))
        assert len({v.id for v in versions}) == updates + 1
        assert await store.latest_blueprint_version(ORG, bp.id) == updates + 1

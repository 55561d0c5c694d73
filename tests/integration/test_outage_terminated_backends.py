"""Found by the fault suite: after pg_terminate_backend, a pooled connection that has read the
server's FATAL message but not yet the end of the stream fails its next statement with
asyncpg's InternalClientError ("cannot switch to state ...; another operation is in
progress"). `until_available` must take that as the database being away, or a delivery that
was just sent is not recorded and gets sent again once its lease expires."""

from __future__ import annotations

import asyncio
import collections

import asyncpg
import pytest

from services.webhook_delivery.engine.outage import until_available
from shared.db import Database, ensure_database
from tests.conftest import BASE_DSN

pytestmark = pytest.mark.timeout(60)
ROUNDS = 15
POOL = 10


async def test_statements_survive_terminated_pool_connections(fresh_database_url: str) -> None:
    await ensure_database(fresh_database_url)
    db = await Database.connect(fresh_database_url, "public", size=POOL)
    admin = await asyncpg.connect(BASE_DSN)
    name = fresh_database_url.rsplit("/", 1)[1]
    # What the same statements raise without until_available: proves the race was hit.
    raw: collections.Counter[str] = collections.Counter()

    async def statement() -> int:
        async with db.connection() as conn:
            return int(await conn.fetchval("SELECT 1"))

    async def bare() -> None:
        try:
            await statement()
        except Exception as exc:
            raw[type(exc).__name__] += 1

    try:
        for _ in range(ROUNDS):
            await asyncio.gather(*(statement() for _ in range(POOL)))  # the pool is full
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = $1 AND application_name = 'herald-public'",
                name,
            )
            await asyncio.gather(*(bare() for _ in range(POOL // 2)))
            done = await asyncio.wait_for(
                asyncio.gather(
                    *(until_available(statement, "test") for _ in range(POOL)), return_exceptions=True
                ),
                20,
            )
            assert done == [1] * POOL, [repr(d) for d in done if d != 1]
        assert raw, "no statement ever met a terminated connection: the race was not exercised"
    finally:
        await admin.close()
        await db.close()

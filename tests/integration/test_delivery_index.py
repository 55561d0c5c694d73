"""The subscription index's listening connection: a LISTEN that fails must not leave its
connection open (the refresher retries every second: one more left open each time)."""

from __future__ import annotations

import asyncpg
import pytest

from services.webhook_delivery.app import SCHEMA
from services.webhook_delivery.engine import index
from services.webhook_delivery.engine.index import LISTENER_NAME, IndexRefresher, SubscriptionIndex
from shared.config import Settings
from shared.db import Database
from tests.delivery_support import connect, wait_until

pytestmark = pytest.mark.timeout(60)


async def _listeners(conn: asyncpg.Connection) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()",
            LISTENER_NAME,
        )
    )


async def test_a_failed_listen_closes_its_connection(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = await connect(settings)
    db = await Database.connect(settings.database_url, SCHEMA)
    refresher = IndexRefresher(db, SubscriptionIndex())
    try:
        before = await _listeners(conn)
        # PostgreSQL refuses LISTEN "" and keeps the session: add_listener fails on a live
        # connection, as it does on a server that cannot LISTEN (a hot standby, say).
        monkeypatch.setattr(index, "CHANNEL", "")
        failures = []
        for _ in range(3):
            with pytest.raises(asyncpg.PostgresSyntaxError) as failed:
                await refresher.start()
            # Kept, with the frames it holds: only the refresher itself may close the connection.
            failures.append(failed)

        async def closed() -> bool:
            return await _listeners(conn) == before

        await wait_until(closed, what="the failed listeners' connections to close")
        assert not refresher.index.loaded.is_set()
        monkeypatch.undo()
        await refresher.start()
        assert refresher.index.loaded.is_set()
        assert await _listeners(conn) == before + 1  # the one that listens, and no other
        del failures
    finally:
        await refresher.close()
        await db.close()
        await conn.close()

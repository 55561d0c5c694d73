"""`recover` over a window larger than one page: the request answers at once with the count,
and a background job re-queues every failed and skipped delivery of the window, a page at a
time, each once, and nothing outside the window or already delivered."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.webhook_delivery.api.recovery import PAGE, Recoveries
from services.webhook_delivery.app import SCHEMA
from services.webhook_delivery.store.delivery_repo import DeliveryRepo
from shared.config import Settings
from shared.db import Database
from tests.conftest import Suite
from tests.delivery_support import connect, insert_subscription, own_lanes, wait_until
from tests.receiver import Receiver, start_receiver

pytestmark = pytest.mark.timeout(120)
TOPIC = "location.created"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, webhook_allow_private=True, webhook_breaker_failures=100_000)


@pytest.fixture
async def db_and_receiver(settings: Settings) -> AsyncIterator[tuple[asyncpg.Connection, Receiver]]:
    """A connection to the migrated test database, and a receiver that answers 200."""
    conn = await connect(settings)
    receiver = await start_receiver()
    yield conn, receiver
    await receiver.stop()
    await conn.close()


async def _store(
    conn: asyncpg.Connection, sub_id: uuid.UUID, rows: list[tuple[str, datetime]]
) -> list[uuid.UUID]:
    """Deliveries (status, created at) of events of their own, as earlier attempts left them;
    their event ids, in order."""
    events = [uuid.uuid4() for _ in rows]
    await conn.execute(
        "INSERT INTO webhook_events (id, topic, body) SELECT e, $2, convert_to('{}', 'UTF8')"
        " FROM unnest($1::uuid[]) AS e",
        events,
        TOPIC,
    )
    await conn.execute(
        "INSERT INTO deliveries (id, subscription_id, event_id, topic, status, attempts, created_at, updated_at)"
        " SELECT gen_random_uuid(), $1, e, $2, st, CASE WHEN st = 'skipped' THEN 0 ELSE 1 END, at, at"
        " FROM unnest($3::uuid[], $4::text[], $5::timestamptz[]) AS t (e, st, at)",
        sub_id,
        TOPIC,
        events,
        [status for status, _ in rows],
        [at for _, at in rows],
    )
    return events


async def _statuses(conn: asyncpg.Connection, events: list[uuid.UUID]) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM deliveries WHERE event_id = ANY($1::uuid[]) GROUP BY status",
        events,
    )
    return {r["status"]: r["n"] for r in rows}


async def test_recover_re_queues_a_window_larger_than_a_page(
    suite: Suite, db_and_receiver: tuple[asyncpg.Connection, Receiver]
) -> None:
    conn, receiver = db_and_receiver
    owner, _, token = await suite.new_user()
    sub = await insert_subscription(
        conn, receiver.url, [TOPIC], owner_id=owner["id"], owner_roles=owner["roles"]
    )
    since = datetime.now(UTC) - timedelta(hours=2)
    until = since + timedelta(hours=1)
    count = PAGE + 30
    # In the window, oldest first: failed and skipped ones with delivered ones between them.
    inside = [("skipped" if i % 4 == 0 else "failed", since + timedelta(seconds=i)) for i in range(count)]
    recoverable = await _store(conn, sub["id"], inside)
    delivered = await _store(
        conn, sub["id"], [("succeeded", since + timedelta(seconds=i, milliseconds=500)) for i in range(40)]
    )
    # Outside it: just before `since`, and at `until` (the window ends before it).
    outside = await _store(
        conn, sub["id"], [("failed", since - timedelta(milliseconds=1)), ("skipped", until)]
    )

    resp, body = await suite.request(
        "POST",
        f"/v2/subscription/{sub['id']}/recover",
        token=token,
        json={"since": since.isoformat(), "until": until.isoformat()},
    )
    assert resp.status == 202, body
    assert body == {"deliveries": count}

    await receiver.wait_for(count, timeout=90)

    async def all_delivered() -> bool:
        return await _statuses(conn, recoverable) == {"succeeded": count}

    await wait_until(all_delivered, timeout=30, what="every recovered delivery to succeed")
    assert sorted(receiver.ids()) == sorted(str(e) for e in recoverable)  # each once, only those
    assert await _statuses(conn, delivered) == {"succeeded": 40}
    assert await _statuses(conn, outside) == {"failed": 1, "skipped": 1}


async def test_a_page_re_queued_leaves_the_rest_failed_or_skipped(
    db_and_receiver: tuple[asyncpg.Connection, Receiver],
) -> None:
    """What a job stopped after one page leaves behind: the rest of the window as it was, so
    that recovering the window again takes only that rest."""
    conn, _ = db_and_receiver
    sub = await insert_subscription(conn, "http://127.0.0.1:9/hook", [TOPIC])
    try:
        since = datetime.now(UTC) - timedelta(hours=1)
        window = await _store(
            conn,
            sub["id"],
            [("failed" if i % 2 else "skipped", since + timedelta(seconds=i)) for i in range(7)],
        )
        repo = DeliveryRepo(conn)
        count, until = await repo.recoverable(sub["id"], since, None)
        assert count == 7 and until > since
        items, after = await repo.recover_page(sub["id"], since, until, None, 3)
        assert len(items) == 3 and after is not None
        assert await _statuses(conn, window[:3]) == {"pending": 3}
        assert await _statuses(conn, window[3:]) == {"failed": 2, "skipped": 2}
        # Recovering again counts, and takes, only what is left.
        assert (await repo.recoverable(sub["id"], since, until))[0] == 4
        items, after = await repo.recover_page(sub["id"], since, until, None, 3)
        assert [d for d, _, _ in items] == [
            r["id"]
            for r in await conn.fetch(
                "SELECT id FROM deliveries WHERE event_id = ANY($1::uuid[]) ORDER BY created_at", window[3:6]
            )
        ]
        items, after = await repo.recover_page(sub["id"], since, until, after, 3)
        assert len(items) == 1 and after is None
        assert await _statuses(conn, window) == {"pending": 7}
    finally:
        await conn.execute("DELETE FROM subscriptions WHERE id = $1", sub["id"])


async def test_a_job_stopped_mid_way_says_so_and_leaves_the_rest_to_recover_again(
    settings: Settings,
    db_and_receiver: tuple[asyncpg.Connection, Receiver],
    caplog: pytest.LogCaptureFixture,
) -> None:
    conn, _ = db_and_receiver
    sub = await insert_subscription(conn, "http://127.0.0.1:9/hook", [TOPIC])
    db = await Database.connect(settings.database_url, SCHEMA)
    blocker = await connect(settings)
    try:
        since = datetime.now(UTC) - timedelta(hours=1)
        window = await _store(conn, sub["id"], [("failed", since + timedelta(seconds=i)) for i in range(5)])
        # The fourth delivery is locked (being retried on its own, say): the job, a page of one
        # delivery at a time, waits there after re-queuing three, and the service stops.
        await blocker.execute("BEGIN")
        await blocker.execute("SELECT 1 FROM deliveries WHERE event_id = $1 FOR UPDATE", window[3])
        async with own_lanes(settings) as broker:
            recoveries = Recoveries(db, broker, page=1)
            job = recoveries.start(sub["id"], since, datetime.now(UTC), len(window))

            async def waiting_at_the_fourth() -> bool:
                return await _statuses(conn, window[:3]) == {"pending": 3} and bool(
                    await conn.fetchval(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                )

            await wait_until(waiting_at_the_fourth, what="the job to wait at the locked delivery")
            with caplog.at_level(logging.ERROR, logger="herald.webhook.recovery"):
                await recoveries.close()
        assert job.cancelled()
        assert "stopped after 3 of 5 deliveries (the service is stopping)" in caplog.text
        await blocker.execute("ROLLBACK")
        assert await _statuses(conn, window[3:]) == {"failed": 2}
        count, _ = await DeliveryRepo(conn).recoverable(sub["id"], since, None)
        assert count == 2
    finally:
        await blocker.close()
        await db.close()
        await conn.execute("DELETE FROM subscriptions WHERE id = $1", sub["id"])

"""Replay through the edge: every stored event of a window that the subscription would be sent
now, whether delivered before, failed, or older than the subscription, as new deliveries with
the same webhook-id; nothing outside the window, the topics or the filter, nothing the owner
may not read; the window's limits (10,000 events, what retention pruned); and the fan-out still
stores one delivery per (subscription, event) however often its message comes."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest
import standardwebhooks

from services.webhook_delivery.api.recovery import Recoveries
from services.webhook_delivery.api.replay import REPLAY_LIMIT, replay_job
from services.webhook_delivery.app import SCHEMA
from services.webhook_delivery.engine.pruner import Pruner
from services.webhook_delivery.store.delivery_repo import PENDING, DeliveryRepo
from services.webhook_delivery.store.event_repo import EventRepo
from shared.config import Settings
from shared.db import Database
from shared.events import make_event
from tests.conftest import Suite, start_suite
from tests.delivery_support import (
    Publisher,
    connect,
    deliveries_of,
    insert_subscription,
    own_lanes,
    wait_status,
    wait_until,
)
from tests.integration.test_delivery_api import Env, _subscribe, env, settings
from tests.receiver import Answer, Receiver

__all__ = ["env", "settings"]  # the fixtures, used by name

pytestmark = pytest.mark.timeout(120)


async def _stored(conn: asyncpg.Connection, *events: dict[str, Any]) -> None:
    """The fan-out has stored these events (whether or not anyone was sent them)."""
    ids = [uuid.UUID(e["id"]) for e in events]

    async def all_there() -> bool:
        found = await conn.fetchval("SELECT count(*) FROM webhook_events WHERE id = ANY($1::uuid[])", ids)
        return bool(found == len(ids))

    await wait_until(all_there, what="the fan-out to store the events")


async def _replay(suite: Suite, sub_id: Any, token: str, body: Any) -> tuple[int, Any]:
    resp, answer = await suite.request("POST", f"/v2/subscription/{sub_id}/replay", token=token, json=body)
    return resp.status, answer


async def test_replay_sends_the_window_again_as_the_subscription_would_get_it_now(
    env: Env, receiver: Receiver
) -> None:
    suite, conn = env.suite, env.conn
    owner, _, token = await suite.new_user()
    someone = str(uuid.uuid4())
    async with Publisher(suite.settings) as pub:
        before_window = await pub.event("location.created", name="Too early")
        await _stored(conn, before_window)
        since = datetime.now(UTC)
        # Before the subscription exists: matched nobody, stored all the same.
        older = await pub.event("location.created", name="Older than the subscription")
        await _stored(conn, older)
        sub = await _subscribe(
            env,
            owner,
            receiver.url,
            topics=["location.created", "location.updated", "event.*"],
            filter_={"data.name": {"ne": "Filtered out"}},
        )
        delivered = await pub.event("location.updated", name="Delivered")
        await wait_status(conn, sub["id"], "succeeded")
        receiver.script = [Answer(500), Answer(500)]  # both attempts of the schedule
        failed = await pub.event("location.created", name="Failed")
        await wait_status(conn, sub["id"], "failed")
        public = await pub.event("event.approved", status="approved", ownerId=someone)
        own_draft = await pub.event("event.created", status="draft", ownerId=owner["id"])
        others_draft = await pub.event("event.created", status="draft", ownerId=someone)
        other_topic = await pub.event("location.deleted", name="Not subscribed")
        filtered = await pub.event("location.created", name="Filtered out")
        await wait_status(conn, sub["id"], "succeeded", 3)  # delivered, public, own draft
        await _stored(conn, others_draft, other_topic, filtered)
        until = datetime.now(UTC)
        after_window = await pub.event("location.created", name="Too late")
        await wait_status(conn, sub["id"], "succeeded", 4)
    first_round = len(receiver.requests)
    assert first_round == 6  # delivered, failed twice, public, own draft, after the window

    _, _, stranger = await suite.new_user()
    window = {"since": since.isoformat(), "until": until.isoformat()}
    status, problem = await _replay(suite, sub["id"], stranger, window)
    assert status == 404, problem
    status, answer = await _replay(suite, sub["id"], token, window)
    assert status == 202, answer
    replayed = {older["id"], delivered["id"], failed["id"], public["id"], own_draft["id"]}
    assert answer == {"events": len(replayed)}

    await receiver.wait_for(first_round + len(replayed))
    again = receiver.requests[first_round:]
    assert sorted(r.webhook_id for r in again) == sorted(replayed)
    for got in again:  # signed as any delivery, with the event's own bytes and id
        body = standardwebhooks.Webhook(sub["secret"]).verify(got.body, got.headers)
        assert body["id"] == got.webhook_id
    rows = await wait_status(conn, sub["id"], "succeeded", 4 + len(replayed))
    replays = [r for r in rows if r["replay_id"] is not None]
    assert sorted(str(r["event_id"]) for r in replays) == sorted(replayed)
    assert len({r["replay_id"] for r in replays}) == 1 and {r["lane"] for r in replays} == {"retry"}
    # The fan-out's own deliveries are as they were: one each, the failed one still failed.
    fanned = {
        str(r["event_id"]): r["status"] for r in await deliveries_of(conn, sub["id"]) if not r["replay_id"]
    }
    assert fanned == {
        delivered["id"]: "succeeded",
        failed["id"]: "failed",
        public["id"]: "succeeded",
        own_draft["id"]: "succeeded",
        after_window["id"]: "succeeded",
    }

    # An admin may replay too; an empty window sends nothing.
    admin = await suite.admin_token()
    status, answer = await _replay(
        suite, sub["id"], admin, {"since": "2000-01-01T00:00:00Z", "until": "2000-01-02T00:00:00Z"}
    )
    assert status == 202 and answer == {"events": 0}


async def test_replay_refuses_what_it_cannot_do(env: Env, receiver: Receiver) -> None:
    suite = env.suite
    owner, _, token = await suite.new_user()
    sub = await _subscribe(env, owner, receiver.url, topics=["event.*"], active=False)
    status, problem = await _replay(suite, sub["id"], token, {"since": "2026-01-01T00:00:00Z"})
    assert status == 409, problem  # enable it first, as for recover
    status, problem = await _replay(suite, uuid.uuid4(), token, {"since": "2026-01-01T00:00:00Z"})
    assert status == 404, problem
    # The window is read as recover's is (tested there); its own schema refuses the same.
    for body, expected in (({"until": "2026-01-01T00:00:00Z"}, 422), ({"since": 1}, 422), ([], 400)):
        status, problem = await _replay(suite, sub["id"], token, body)
        assert status == expected, (body, problem)


async def test_a_window_of_more_than_the_limit_is_refused(env: Env, receiver: Receiver) -> None:
    """Counted cheaply (the scan stops past the limit); the limit itself is a window that may
    be replayed: here it holds only events the owner may not read, so none is sent."""
    suite, conn = env.suite, env.conn
    owner, _, token = await suite.new_user()
    sub = await _subscribe(env, owner, receiver.url, topics=["event.rejected"])
    since = datetime.now(UTC) - timedelta(days=20)
    someone = str(uuid.uuid4())
    body = orjson.dumps({"data": {"status": "rejected", "ownerId": someone}})
    ids = await conn.fetchval(
        "WITH e AS (INSERT INTO webhook_events (id, topic, body, created_at)"
        " SELECT gen_random_uuid(), 'event.rejected', $1, $2::timestamptz + i * interval '1 millisecond'"
        " FROM generate_series(0, $3 - 1) AS i RETURNING id) SELECT array_agg(id) FROM e",
        body,
        since,
        REPLAY_LIMIT + 1,
    )
    try:
        last = since + timedelta(milliseconds=REPLAY_LIMIT)
        status, problem = await _replay(
            suite,
            sub["id"],
            token,
            {"since": since.isoformat(), "until": (last + timedelta(seconds=1)).isoformat()},
        )
        assert status == 422, problem
        assert (
            problem["type"].endswith("/validation-failed")
            and f"more than {REPLAY_LIMIT} events" in problem["detail"]
        )
        status, answer = await _replay(
            suite, sub["id"], token, {"since": since.isoformat(), "until": last.isoformat()}
        )
        assert status == 202 and answer == {"events": 0}, answer
    finally:
        await conn.execute("DELETE FROM webhook_events WHERE id = ANY($1::uuid[])", ids)


async def test_a_replay_job_makes_its_deliveries_a_page_at_a_time(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    db = await Database.connect(settings.database_url, SCHEMA)
    sub = await insert_subscription(conn, "http://127.0.0.1:9/hook", ["location.created"])
    try:
        events = []
        for _ in range(5):
            event_id = uuid.uuid4()
            at = await conn.fetchval(
                "INSERT INTO webhook_events (id, topic, body) VALUES ($1, 'location.created', '{}')"
                " RETURNING created_at",
                event_id,
            )
            events.append((at, event_id))
        async with own_lanes(settings) as broker:
            recoveries = Recoveries(db, broker, page=2)
            job = replay_job(sub["id"], events, 2, events[0][0], datetime.now(UTC))
            assert await recoveries.run(job) == 5
        rows = await deliveries_of(conn, sub["id"])
        assert sorted(r["event_id"] for r in rows) == sorted(e for _, e in events)
        assert {r["status"] for r in rows} == {PENDING} and len({r["replay_id"] for r in rows}) == 1
    finally:
        await conn.execute("DELETE FROM subscriptions WHERE id = $1", sub["id"])
        await db.close()


async def test_the_fan_out_stores_one_delivery_per_subscription_and_event(conn: asyncpg.Connection) -> None:
    """The unique key now leaves replays out: a redelivered message still adds nothing, even
    after a replay of that event, and a second fan-out row is refused."""
    sub = await insert_subscription(conn, "http://127.0.0.1:9/hook", ["location.created"])
    try:
        event = make_event("location.created", {"id": str(uuid.uuid4())}, str(uuid.uuid4()))
        event_id, body = uuid.UUID(event["id"]), orjson.dumps(event)
        repo = DeliveryRepo(conn)
        assert await repo.fan_out(event_id, event["type"], body, [(uuid.uuid4(), sub["id"], PENDING)])
        await EventRepo(conn).replay(sub["id"], uuid.uuid4(), [event_id])
        await EventRepo(conn).replay(sub["id"], uuid.uuid4(), [event_id])
        # The broker hands the message over again: nothing new.
        assert await repo.fan_out(event_id, event["type"], body, [(uuid.uuid4(), sub["id"], PENDING)]) is None
        rows = await deliveries_of(conn, sub["id"])
        assert len(rows) == 3 and sum(r["replay_id"] is None for r in rows) == 1
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                "INSERT INTO deliveries (id, subscription_id, event_id, topic, status)"
                " VALUES ($1, $2, $3, 'location.created', 'skipped')",
                uuid.uuid4(),
                sub["id"],
                event_id,
            )
    finally:
        await conn.execute("DELETE FROM subscriptions WHERE id = $1", sub["id"])


# -- retention: on a database of its own (what it prunes, and the mark it leaves, are its own) --


@pytest.fixture
def fresh_settings(settings: Settings, fresh_database_url: str) -> Settings:
    return dataclasses.replace(settings, database_url=fresh_database_url)


async def _event_at(conn: asyncpg.Connection, age: timedelta) -> uuid.UUID:
    event_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO webhook_events (id, topic, body, created_at) VALUES ($1, 'location.created', '{}', now() - $2::interval)",
        event_id,
        age,
    )
    return event_id


async def _delivery(
    conn: asyncpg.Connection, sub_id: uuid.UUID, event_id: uuid.UUID, status: str
) -> uuid.UUID:
    delivery_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO deliveries (id, subscription_id, event_id, topic, status, attempts)"
        " VALUES ($1, $2, $3, 'location.created', $4, 1)",
        delivery_id,
        sub_id,
        event_id,
        status,
    )
    await conn.execute(
        "INSERT INTO delivery_attempts (delivery_id, attempted_at, status_code, duration_ms)"
        " VALUES ($1, now(), 200, 1)",
        delivery_id,
    )
    return delivery_id


async def test_pruning_deletes_events_past_retention_with_their_finished_deliveries(
    fresh_settings: Settings,
) -> None:
    conn = await connect(fresh_settings)
    db = await Database.connect(fresh_settings.database_url, SCHEMA)
    try:
        sub = await insert_subscription(conn, "http://127.0.0.1:9/hook", ["location.created"])
        hour = timedelta(hours=1)
        old = [await _event_at(conn, 2 * hour + timedelta(seconds=i)) for i in range(5)]
        delivered = await _delivery(conn, sub["id"], old[0], "succeeded")
        await _delivery(conn, sub["id"], old[1], "failed")
        still_pending = await _delivery(conn, sub["id"], old[2], PENDING)
        young = await _event_at(conn, timedelta(minutes=30))
        young_delivery = await _delivery(conn, sub["id"], young, "succeeded")
        assert await EventRepo(conn).pruned_through() is None

        # Retention of an hour; two rows per transaction, so that it takes several.
        deliveries, events = await Pruner(db, retention=3600, batch=2).prune_once()
        assert (deliveries, events) == (2, 4)
        left = {r["id"] for r in await conn.fetch("SELECT id FROM webhook_events")}
        assert left == {old[2], young}  # its delivery still needs the bytes
        assert {r["id"] for r in await deliveries_of(conn, sub["id"])} == {still_pending, young_delivery}
        assert (
            await conn.fetchval("SELECT count(*) FROM delivery_attempts WHERE delivery_id = $1", delivered)
            == 0
        )
        newest_pruned = await conn.fetchval("SELECT now() - interval '2 hours'")
        mark = await EventRepo(conn).pruned_through()
        assert mark is not None and abs((mark - newest_pruned).total_seconds()) < 60
        # Once done, its event goes too; the mark never moves back.
        await conn.execute("UPDATE deliveries SET status = 'succeeded' WHERE id = $1", still_pending)
        await conn.execute("UPDATE events_pruned SET through = through + interval '1 day'")
        assert await Pruner(db, retention=3600).prune_once() == (1, 1)
        assert await EventRepo(conn).pruned_through() == mark + timedelta(days=1)
    finally:
        await db.close()
        await conn.close()


async def test_a_window_reaching_into_what_was_pruned_is_refused(
    aiohttp_server: Any, fresh_settings: Settings
) -> None:
    fresh_suite = await start_suite(aiohttp_server, fresh_settings)
    conn = await connect(fresh_settings)
    try:
        owner, _, token = await fresh_suite.new_user()
        sub = await insert_subscription(
            conn, "http://127.0.0.1:9/hook", ["location.*"], owner_id=owner["id"], owner_roles=owner["roles"]
        )
        window = {"since": (datetime.now(UTC) - timedelta(days=40)).isoformat()}
        status, answer = await _replay(fresh_suite, sub["id"], token, window)
        assert status == 202 and answer == {"events": 0}  # nothing was pruned: nothing is missing
        await _event_at(conn, timedelta(days=31))
        db = await Database.connect(fresh_settings.database_url, SCHEMA)
        try:
            # (Or the engine's own round at start took it already: either way it is pruned.)
            await Pruner(db, fresh_settings.event_retention).prune_once()
        finally:
            await db.close()
        assert await EventRepo(conn).pruned_through() is not None
        status, problem = await _replay(fresh_suite, sub["id"], token, window)
        assert status == 422, problem
        assert "events are kept 30 days (HERALD_EVENT_RETENTION)" in problem["detail"]
        within = {"since": (datetime.now(UTC) - timedelta(days=29)).isoformat()}
        status, answer = await _replay(fresh_suite, sub["id"], token, within)
        assert status == 202 and answer == {"events": 0}
    finally:
        await conn.close()
        await fresh_suite.close()

"""Fan-out against real PostgreSQL and RabbitMQ: which subscriptions get a delivery of a domain
event, once, and what the owner may read."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from typing import Any

import asyncpg
import pytest
import standardwebhooks
from aiohttp import web

from services.webhook_delivery.app import create_app
from services.webhook_delivery.engine.fanout import Fanout
from services.webhook_delivery.engine.index import LISTENER_NAME
from services.webhook_delivery.engine.wiring import INDEX
from shared.config import Settings
from shared.webhooks import new_secret
from tests.conftest import BASE_DSN, make_settings
from tests.delivery_support import (
    Publisher,
    connect,
    deliveries_of,
    insert_subscription,
    wait_indexed,
    wait_status,
    wait_until,
)
from tests.factories import indexed_subscription
from tests.receiver import Receiver, start_receiver

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def settings(delivery_settings: Settings) -> Settings:
    return dataclasses.replace(delivery_settings, webhook_retry_schedule=("0.2", "0.4"), webhook_timeout=2.0)


@pytest.fixture(autouse=True)  # before the engine starts: it patches the fan-out
def handled(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the domain messages the fan-out has finished handling, in that order (what a
    message led to, it has led to by then): instead of waiting to see that nothing comes."""
    done: list[str] = []
    handle = Fanout.handle

    async def recording(self: Fanout, event: dict[str, Any], message: Any) -> None:
        try:
            await handle(self, event, message)
        finally:
            done.append(str(event.get("id")))

    monkeypatch.setattr(Fanout, "handle", recording)
    return done


async def _handled(handled: list[str], *ids: str, times: int = 1) -> None:
    await wait_until(lambda: all(handled.count(i) >= times for i in ids), what=f"the fan-out of {ids}")


async def test_event_goes_to_matching_subscriptions_once(
    engine: web.Application,
    settings: Settings,
    conn: asyncpg.Connection,
    receiver: Receiver,
    handled: list[str],
) -> None:
    exact = await insert_subscription(conn, receiver.url, ["location.created"])
    family = await insert_subscription(conn, receiver.url, ["location.*"])
    everything = await insert_subscription(conn, receiver.url, ["*"])
    other = await insert_subscription(conn, receiver.url, ["event.*", "location.deleted"])
    await wait_indexed(engine, exact, family, everything, other)
    async with Publisher(settings) as pub:
        event = await pub.event("location.created", name="Hall")
        await receiver.wait_for(3)
        # The same message again (at-least-once redelivery): nothing new.
        await pub.publish(event)
        after = await pub.event("location.updated", name="Hall 2")
        await receiver.wait_for(5)
    for sub in (exact, family, everything):
        await wait_status(conn, sub["id"], "succeeded", 1 if sub is exact else 2)
    rows = [r for s in (exact, family, everything) for r in await deliveries_of(conn, s["id"])]
    assert sorted(str(r["event_id"]) for r in rows).count(event["id"]) == 3
    assert {str(r["event_id"]) for r in await deliveries_of(conn, family["id"])} == {
        event["id"],
        after["id"],
    }
    assert await deliveries_of(conn, other["id"]) == []
    stored = await conn.fetchval("SELECT body FROM webhook_events WHERE id = $1", uuid.UUID(event["id"]))
    assert receiver.requests[0].body == bytes(stored)
    await _handled(handled, event["id"], times=2)  # the repeated message too
    await wait_status(conn, family["id"], "succeeded", 2)
    assert sorted(receiver.ids()).count(event["id"]) == 3


async def test_subscription_sees_only_what_its_owner_may_read(
    engine: web.Application, settings: Settings, conn: asyncpg.Connection, receiver: Receiver
) -> None:
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    alice_sub = await insert_subscription(conn, receiver.url, ["event.*"], owner_id=alice)
    bob_sub = await insert_subscription(conn, receiver.url, ["event.*"], owner_id=bob)
    approver = await insert_subscription(conn, receiver.url, ["event.*"], owner_roles=["approver"])
    await wait_indexed(engine, alice_sub, bob_sub, approver)
    async with Publisher(settings) as pub:
        draft = await pub.event("event.created", title="Bob's draft", status="draft", ownerId=bob)
        approved = await pub.event("event.approved", title="Public", status="approved", ownerId=bob)
        await wait_status(conn, approver["id"], "succeeded", 2)
        await wait_status(conn, bob_sub["id"], "succeeded", 2)
        await wait_status(conn, alice_sub["id"], "succeeded", 1)
    # Each event's deliveries were stored in one statement: Bob's rows for the draft are
    # there, so Alice's would be too.
    alice_events = {str(r["event_id"]) for r in await deliveries_of(conn, alice_sub["id"])}
    assert alice_events == {approved["id"]}, "a member received another member's draft"
    assert draft["id"] in {str(r["event_id"]) for r in await deliveries_of(conn, bob_sub["id"])}


async def test_disabled_subscription_gets_skipped_and_index_follows_changes(
    engine: web.Application, settings: Settings, conn: asyncpg.Connection, receiver: Receiver
) -> None:
    sub = await indexed_subscription(engine, conn, receiver.url, ["location.*"], active=False)
    async with Publisher(settings) as pub:
        skipped = await pub.event("location.created", name="Skipped")
        await wait_status(conn, sub["id"], "skipped")
        # Enabled (a NOTIFY reaches the index): the next event is sent.
        await conn.execute("UPDATE subscriptions SET active = true WHERE id = $1", sub["id"])
        await wait_indexed(engine, sub, active=True)
        sent = await pub.event("location.created", name="Sent")
        await receiver.wait_for(1)
        # Deleted: gone from the index, and so from fan-out.
        await conn.execute("DELETE FROM subscriptions WHERE id = $1", sub["id"])
        await wait_until(lambda: engine[INDEX].get(sub["id"]) is None, what="removal from the index")
    assert receiver.ids() == [sent["id"]]
    assert skipped["id"] != sent["id"]


async def test_owner_events_disable_and_narrow_subscriptions(
    engine: web.Application,
    settings: Settings,
    conn: asyncpg.Connection,
    receiver: Receiver,
    handled: list[str],
) -> None:
    deleted_owner, demoted_owner, locked_owner = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    doomed = await insert_subscription(conn, receiver.url, ["event.*"], owner_id=deleted_owner)
    locked = await insert_subscription(conn, receiver.url, ["event.*"], owner_id=locked_owner)
    demoted = await insert_subscription(
        conn, receiver.url, ["event.*"], owner_id=demoted_owner, owner_roles=["approver"]
    )
    async with Publisher(settings) as pub:
        await pub.publish(
            {"id": str(uuid.uuid4()), "type": "user.deleted", "data": {"id": deleted_owner}},
            exchange=settings.auth_exchange,
        )
        await pub.publish(
            {
                "id": str(uuid.uuid4()),
                "type": "user.credentials_changed",
                "data": {"id": demoted_owner, "cv": 2, "active": True, "roles": ["member"]},
            },
            exchange=settings.auth_exchange,
        )
        await pub.publish(
            {
                "id": str(uuid.uuid4()),
                "type": "user.credentials_changed",
                "data": {"id": locked_owner, "cv": 3, "active": False, "roles": ["member"]},
            },
            exchange=settings.auth_exchange,
        )

        async def applied() -> bool:
            rows = {
                r["id"]: r
                for r in await conn.fetch(
                    "SELECT id, active, disabled_reason, owner_roles FROM subscriptions"
                    " WHERE id = ANY($1::uuid[])",
                    [doomed["id"], demoted["id"], locked["id"]],
                )
            }
            return (
                not rows[doomed["id"]]["active"]
                and not rows[locked["id"]]["active"]
                and rows[demoted["id"]]["owner_roles"] == ["member"]
            )

        await wait_until(applied, what="the owner events")
        assert "deleted" in await conn.fetchval(
            "SELECT disabled_reason FROM subscriptions WHERE id = $1", doomed["id"]
        )
        await wait_until(
            lambda: engine[INDEX].get(demoted["id"]).owner_roles == frozenset({"member"}),
            what="the new roles in the index",
        )
        other = await pub.event("event.created", title="Not mine", status="draft", ownerId=str(uuid.uuid4()))
        mine = await pub.event("event.created", title="Mine", status="draft", ownerId=demoted_owner)
        await wait_status(conn, demoted["id"], "succeeded")
        await _handled(handled, other["id"], mine["id"])
    assert [str(r["event_id"]) for r in await deliveries_of(conn, demoted["id"])] == [mine["id"]]


async def test_only_events_passing_a_filter_are_delivered(
    engine: web.Application, settings: Settings, receiver: Receiver, handled: list[str]
) -> None:
    """An event the filter keeps out makes no delivery row, not even a skipped one; one it lets
    through arrives signed, like any other."""
    big_public = {"data.capacity": {"gte": 50}, "data.tags": "public", "actor.id": {"exists": True}}
    secret = new_secret()
    filtered_receiver = await start_receiver()
    conn = await connect(settings)
    try:
        filtered = await insert_subscription(
            conn, filtered_receiver.url, ["event.*"], filter_=big_public, secret=secret
        )
        paused = await insert_subscription(conn, receiver.url, ["event.*"], active=False, filter_=big_public)
        everything = await insert_subscription(conn, receiver.url, ["event.*"])
        await wait_indexed(engine, filtered, paused, everything)
        async with Publisher(settings) as pub:
            common = {"status": "approved", "ownerId": str(uuid.uuid4())}
            small = await pub.event("event.approved", capacity=10, tags=["public"], **common)
            private = await pub.event("event.approved", capacity=80, tags=["staff"], **common)
            wanted = await pub.event("event.approved", capacity=80, tags=["staff", "public"], **common)
            await wait_status(conn, everything["id"], "succeeded", 3)
            [got] = await filtered_receiver.wait_for(1)
        await _handled(handled, small["id"], private["id"], wanted["id"])
        body = standardwebhooks.Webhook(secret).verify(got.body, got.headers)
        assert body["id"] == wanted["id"] and body["data"]["capacity"] == 80
        await wait_status(conn, filtered["id"], "succeeded")
        assert [str(r["event_id"]) for r in await deliveries_of(conn, filtered["id"])] == [wanted["id"]]
        assert [(str(r["event_id"]), r["status"]) for r in await deliveries_of(conn, paused["id"])] == [
            (wanted["id"], "skipped")
        ]
        assert [r.webhook_id for r in filtered_receiver.requests] == [wanted["id"]]
    finally:
        await filtered_receiver.stop()
        await conn.close()


async def test_poison_and_foreign_messages_are_not_fanned_out(
    engine: web.Application,
    settings: Settings,
    conn: asyncpg.Connection,
    receiver: Receiver,
    handled: list[str],
) -> None:
    sub = await indexed_subscription(engine, conn, receiver.url, ["*"])
    bad = [
        {"id": "not-a-uuid", "type": "location.created", "data": {}},
        {"id": str(uuid.uuid4()), "type": "something.else", "data": {}},
        {"id": str(uuid.uuid4()), "type": "webhook.ping", "data": {}},
    ]
    async with Publisher(settings) as pub:
        for event in bad:
            await pub.publish(event)
        good = await pub.event("location.deleted", name="Gone")
        await receiver.wait_for(1)
    await _handled(handled, *(e["id"] for e in bad))
    await wait_status(conn, sub["id"], "succeeded")
    assert receiver.ids() == [good["id"]]
    assert [str(d["event_id"]) for d in await deliveries_of(conn, sub["id"])] == [good["id"]]


async def test_index_reloads_after_its_listening_connection_is_cut(
    engine: web.Application, settings: Settings, conn: asyncpg.Connection, receiver: Receiver
) -> None:
    before = await indexed_subscription(engine, conn, receiver.url, ["location.created"])
    # Cut the LISTEN connection and change things at once: whether a change lands before
    # the reconnect (seen by the full reload) or after (seen by NOTIFY), the index has it.
    cut = await conn.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE application_name = $1 AND datname = current_database()",
        LISTENER_NAME,
    )
    assert cut >= 1
    missed = await insert_subscription(conn, receiver.url, ["location.created"])
    await conn.execute("DELETE FROM subscriptions WHERE id = $1", before["id"])
    await wait_indexed(engine, missed)
    await wait_until(lambda: engine[INDEX].get(before["id"]) is None, what="the deleted one to go")
    async with Publisher(settings) as pub:
        event = await pub.event("location.created", name="After the cut")
        await receiver.wait_for(1)
    await wait_status(conn, missed["id"], "succeeded")
    assert receiver.ids() == [event["id"]]


async def test_events_during_a_database_outage_are_fanned_out_afterwards(
    aiohttp_server: Any,
    fresh_database_url: str,
    amqp_prefix: str,
    signing_pem: str,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PostgreSQL refuses connections for a while (its own test database only): the fan-out
    holds the messages instead of burning their delivery limit, and sends them afterwards."""
    settings = make_settings(
        fresh_database_url,
        amqp_prefix,
        signing_pem,
        webhook_allow_private=True,
        webhook_sweep_seconds=0.2,
        webhook_timeout=2.0,
    )
    # How often the broker handed each message over (a requeue counts against its limit).
    deliveries: list[int] = []
    handle = Fanout.handle

    async def counting(self: Fanout, event: dict[str, Any], message: Any) -> None:
        deliveries.append(int((message.headers or {}).get("x-delivery-count") or 0))
        await handle(self, event, message)

    monkeypatch.setattr(Fanout, "handle", counting)
    retried = _Retries()
    logging.getLogger("herald.webhook.outage").addHandler(retried)
    server = await aiohttp_server(create_app(settings))
    name = fresh_database_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(BASE_DSN)
    conn = await connect(settings)
    try:
        await indexed_subscription(server.app, conn, receiver.url, ["location.created"])
        await conn.close()
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
        async with Publisher(settings) as pub:
            events = [(await pub.event("location.created", name=f"Outage {i}"))["id"] for i in range(3)]
            # Each one is held, its fan-out retried (twice at least) while the database is away.
            await wait_until(
                lambda: all(retried.messages.count(f"fan-out of {e}") >= 2 for e in events),
                what="the fan-out to retry each event through the outage",
            )
            assert receiver.requests == []
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            await receiver.wait_for(3)
            after = await pub.event("location.created", name="After")
            await receiver.wait_for(4)
        assert sorted(receiver.ids()) == sorted([*events, after["id"]])
        assert deliveries == [0, 0, 0, 0], deliveries  # held through the outage, never requeued
    finally:
        logging.getLogger("herald.webhook.outage").removeHandler(retried)
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
        if not conn.is_closed():
            await conn.close()


class _Retries(logging.Handler):
    """What until_available said it is retrying (the part before the colon)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage().split(":", 1)[0])

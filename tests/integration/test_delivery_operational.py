"""Operational events (subscription.disabled, .failing, .recovered, delivery.failed): raised in the
transaction of the change they report, relayed from webhook_delivery's outbox to the domain
exchange, and fanned out to the owner's other subscriptions and admins' only: never to the
subscription they are about, never to another member, and never about a delivery of one."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import orjson
import pytest
import standardwebhooks

from services.auth.app import create_app as auth_app
from services.webhook_delivery.app import create_app as webhook_app
from shared.catalog import envelope_schema
from shared.config import Settings
from shared.events import OPERATIONAL_TOPICS
from shared.validation import validate
from tests.conftest import front, server_url
from tests.delivery_support import (
    Publisher,
    deliveries_of,
    insert_subscription,
    wait_status,
    wait_until,
)
from tests.integration import test_delivery_api, test_delivery_worker
from tests.integration.test_delivery_api import Env, _subscribe
from tests.receiver import Answer, Receiver

pytestmark = pytest.mark.timeout(90)
env = test_delivery_api.env  # the suite, keeping hold of the webhook app (with these settings)
receivers = test_delivery_worker.receivers  # started receivers, stopped after the test
Receivers = Callable[..., Awaitable[Receiver]]


# Four attempts; the circuit opens after two failures in a row and half-opens 0.3 s later.
CHANGES: dict[str, Any] = {
    "webhook_retry_schedule": ("0.2", "0.2", "0.2"),
    "webhook_breaker_failures": 2,
    "webhook_breaker_seconds": 0.3,
    "outbox_poll_seconds": 0.2,
}


@pytest.fixture
def settings(delivery_settings: Settings) -> Settings:
    return dataclasses.replace(delivery_settings, webhook_timeout=2.0, **CHANGES)


def received(receiver: Receiver, sub: dict[str, Any], topic: str) -> list[dict[str, Any]]:
    """The bodies of `topic` the receiver got, each checked against the subscription's secret
    (Standard Webhooks) and the catalog's schema of the topic."""
    hook = standardwebhooks.Webhook(sub["secret"])
    bodies = [hook.verify(r.body, r.headers) for r in receiver.requests]
    for body in bodies:
        validate(envelope_schema(body["type"]), body)
    return [b for b in bodies if b["type"] == topic]


async def wait_received(receiver: Receiver, sub: dict[str, Any], topic: str) -> dict[str, Any]:
    [body] = await wait_until(lambda: received(receiver, sub, topic), what=f"{topic} at {receiver.url}")
    return body


async def operational_rows(conn: asyncpg.Connection, sub_id: uuid.UUID) -> list[str]:
    """The topics of the operational deliveries stored for a subscription."""
    return [d["topic"] for d in await deliveries_of(conn, sub_id) if d["topic"] in OPERATIONAL_TOPICS]


async def outbox_about(conn: asyncpg.Connection, sub_id: uuid.UUID) -> list[str]:
    rows = await conn.fetch("SELECT topic, body FROM outbox ORDER BY seq")
    return [r["topic"] for r in rows if orjson.loads(r["body"])["data"]["subscription"]["id"] == str(sub_id)]


async def test_gone_tells_the_owners_other_subscriptions_and_admins_only(
    env: Env, receivers: Receivers
) -> None:
    suite = env.suite
    owner, _, _ = await suite.new_user()
    other, _, _ = await suite.new_user()
    admin, _, _ = await suite.new_user(roles=["admin"])
    gone = await receivers(Answer(410))
    mine, theirs, admins = [await receivers() for _ in range(3)]
    # `*` covers operational events too: the 410 subscription's own would match, but it is
    # never told about itself.
    dead = await _subscribe(env, owner, gone.url, topics=["*"])
    sibling = await _subscribe(env, owner, mine.url, topics=["*"])
    stranger = await _subscribe(env, other, theirs.url, topics=["*"])
    watcher = await _subscribe(env, admin, admins.url, topics=["subscription.disabled"])
    async with Publisher(suite.settings) as pub:
        event = await pub.event("location.created", name="Hall")
    disabled = await wait_received(mine, sibling, "subscription.disabled")
    data = disabled["data"]
    assert data["reason"] == "gone" and data["lastStatusCode"] == 410 and "410" in data["detail"]
    shown = data["subscription"]
    assert shown["id"] == str(dead["id"]) and shown["ownerId"] == owner["id"]
    assert shown["url"] == gone.url and shown["topics"] == ["*"] and shown["active"] is False
    assert not {"secret", "headers"} & shown.keys()
    assert disabled["actor"] == {"id": None}
    failed = (await wait_received(mine, sibling, "delivery.failed"))["data"]
    assert failed["subscription"]["id"] == str(dead["id"])
    assert failed["eventId"] == event["id"] and failed["eventType"] == "location.created"
    assert failed["attempts"] == 1 and failed["lastStatusCode"] == 410
    admin_copy = await wait_received(admins, watcher, "subscription.disabled")
    assert admin_copy["id"] == disabled["id"]  # one event, delivered to each
    # Each operational event was fanned out in one statement, so what the sibling got
    # settles who else got it: neither the subscription it is about nor another member.
    assert await operational_rows(env.conn, dead["id"]) == []
    assert await operational_rows(env.conn, stranger["id"]) == []
    await wait_status(env.conn, stranger["id"], "succeeded")  # it did get the location
    assert len(gone.requests) == 1


async def test_failing_then_recovered_once_per_run(env: Env, receivers: Receivers) -> None:
    suite = env.suite
    owner, _, _ = await suite.new_user()
    flaky = await receivers(Answer(500), Answer(500), Answer(503))
    mine = await receivers()
    sub = await _subscribe(env, owner, flaky.url, topics=["location.created"])
    sibling = await _subscribe(env, owner, mine.url, topics=["subscription.*"])
    async with Publisher(suite.settings) as pub:
        await pub.event("location.created", name="Flaky")
    [delivery] = await wait_status(env.conn, sub["id"], "succeeded")
    assert delivery["attempts"] == 4
    recovered = await wait_received(mine, sibling, "subscription.recovered")
    failing = await wait_received(mine, sibling, "subscription.failing")
    assert failing["data"]["subscription"]["id"] == recovered["data"]["subscription"]["id"] == str(sub["id"])
    assert failing["data"]["lastStatusCode"] == 500 and failing["data"]["failingSince"]
    assert failing["timestamp"] <= recovered["timestamp"]
    # Two circuit openings (the second after the failed probe), one event for the run.
    assert await outbox_about(env.conn, sub["id"]) == ["subscription.failing", "subscription.recovered"]
    state = await env.conn.fetchrow(
        "SELECT failing_since, failing_reported_at FROM subscriptions WHERE id = $1", sub["id"]
    )
    assert state["failing_since"] is None and state["failing_reported_at"] is None


async def test_retries_exhausted_raise_delivery_failed(env: Env, receivers: Receivers) -> None:
    suite = env.suite
    owner, _, _ = await suite.new_user()
    broken = await receivers(default=Answer(500, body=b"down"))
    mine = await receivers()
    sub = await _subscribe(env, owner, broken.url, topics=["location.*"])
    sibling = await _subscribe(env, owner, mine.url, topics=["delivery.failed"])
    async with Publisher(suite.settings) as pub:
        event = await pub.event("location.updated", name="Nope")
    [delivery] = await wait_status(env.conn, sub["id"], "failed")
    body = await wait_received(mine, sibling, "delivery.failed")
    data = body["data"]
    assert data["deliveryId"] == str(delivery["id"]) and data["subscription"]["id"] == str(sub["id"])
    assert data["eventId"] == event["id"] and data["eventType"] == "location.updated"
    assert data["attempts"] == 4 and data["lastStatusCode"] == 500 and data["lastError"]


async def test_disabled_by_hand_names_who_did_it(env: Env, receivers: Receivers) -> None:
    suite = env.suite
    owner, _, token = await suite.new_user()
    plain, mine = [await receivers() for _ in range(2)]
    sub = await _subscribe(env, owner, plain.url, topics=["location.*"])
    sibling = await _subscribe(env, owner, mine.url, topics=["subscription.disabled"])
    resp, shown = await suite.request(
        "PATCH", f"/v2/subscription/{sub['id']}", token=token, json={"active": False}
    )
    assert resp.status == 200 and shown["active"] is False, shown
    body = await wait_received(mine, sibling, "subscription.disabled")
    assert body["data"]["reason"] == "by_hand" and body["actor"] == {"id": owner["id"]}
    assert body["data"]["subscription"]["version"] == shown["version"]
    # Switched back on and off again: a second event; a PATCH that changes nothing, none.
    for active in (True, False, False):
        resp, _ = await suite.request(
            "PATCH", f"/v2/subscription/{sub['id']}", token=token, json={"active": active}
        )
        assert resp.status == 200
    assert await outbox_about(env.conn, sub["id"]) == ["subscription.disabled"] * 2


async def test_owner_removed_reaches_admins_not_other_members(env: Env, receivers: Receivers) -> None:
    suite = env.suite
    deleted, _, _ = await suite.new_user()
    disabled, _, _ = await suite.new_user()
    other, _, _ = await suite.new_user()
    admin, _, _ = await suite.new_user(roles=["admin"])
    plain, theirs, admins = [await receivers() for _ in range(3)]
    gone_with_owner = await _subscribe(env, deleted, plain.url, topics=["location.*"])
    off_with_owner = await _subscribe(env, disabled, plain.url, topics=["location.*"])
    stranger = await _subscribe(env, other, theirs.url, topics=["*"])
    watcher = await _subscribe(env, admin, admins.url, topics=["subscription.*"])
    admin_token = await suite.admin_token()
    resp, _ = await suite.request("DELETE", f"/v2/user/{deleted['id']}", token=admin_token)
    assert resp.status == 204
    resp, _ = await suite.request(
        "PATCH", f"/v2/user/{disabled['id']}", token=admin_token, json={"active": False}
    )
    assert resp.status == 200

    def about() -> dict[str, str]:
        bodies = received(admins, watcher, "subscription.disabled")
        return {b["data"]["subscription"]["id"]: b["data"]["detail"] for b in bodies if len(bodies) == 2}

    details = await wait_until(about, what="both owners' subscriptions disabled")
    assert details == {
        str(gone_with_owner["id"]): "the owner was deleted",
        str(off_with_owner["id"]): "the owner was disabled",
    }
    assert all(
        b["data"]["reason"] == "owner_removed" for b in received(admins, watcher, "subscription.disabled")
    )
    assert await operational_rows(env.conn, stranger["id"]) == []


async def test_a_failing_operational_delivery_raises_nothing_new(env: Env, receivers: Receivers) -> None:
    suite = env.suite
    owner, _, _ = await suite.new_user()
    gone = await receivers(Answer(410))
    failing = await receivers(default=Answer(500))
    dead = await _subscribe(env, owner, gone.url, topics=["location.*"])
    sibling = await _subscribe(env, owner, failing.url, topics=["subscription.*", "delivery.*"])
    async with Publisher(suite.settings) as pub:
        await pub.event("location.created", name="Gone")
    # Both events about the 410 subscription fail at the sibling, to the last attempt, which
    # opens its circuit and starts its run of failures ...
    done = await wait_status(env.conn, sibling["id"], "failed", 2)
    assert sorted(d["topic"] for d in done) == ["delivery.failed", "subscription.disabled"]
    assert await env.conn.fetchval(
        "SELECT failing_since IS NOT NULL FROM subscriptions WHERE id = $1", sibling["id"]
    )
    # ... and raises nothing about it (each failure wrote its events in the commit that
    # recorded it: none there now means none at all).
    assert await outbox_about(env.conn, sibling["id"]) == []
    assert await outbox_about(env.conn, dead["id"]) == ["delivery.failed", "subscription.disabled"]


async def test_an_event_written_with_no_engine_running_goes_out_when_one_starts(
    aiohttp_server: Any, settings: Settings, conn: asyncpg.Connection, receivers: Receivers
) -> None:
    """The outbox row is committed with the change: whatever stops after it (here no engine
    runs at all), the event goes out once an engine's relay runs."""
    auth = await aiohttp_server(auth_app(settings))
    with_auth = dataclasses.replace(settings, auth_url=server_url(auth))
    api = await aiohttp_server(webhook_app(dataclasses.replace(with_auth, webhook_worker=False)))
    suite = await front(aiohttp_server, dataclasses.replace(with_auth, webhook_url=server_url(api)), auth)
    try:
        owner, _, token = await suite.new_user()
        plain, mine = [await receivers() for _ in range(2)]
        sub = await insert_subscription(conn, plain.url, ["location.*"], owner_id=owner["id"])
        sibling = await insert_subscription(conn, mine.url, ["subscription.*"], owner_id=owner["id"])
        resp, _ = await suite.request(
            "PATCH", f"/v2/subscription/{sub['id']}", token=token, json={"active": False}
        )
        assert resp.status == 200
        assert await outbox_about(conn, sub["id"]) == ["subscription.disabled"]
        await aiohttp_server(webhook_app(dataclasses.replace(with_auth, webhook_api=False)))
        body = await wait_received(mine, sibling, "subscription.disabled")
        assert body["data"]["subscription"]["id"] == str(sub["id"]) and body["data"]["reason"] == "by_hand"
    finally:
        await suite.close()

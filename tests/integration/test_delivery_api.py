"""The delivery log and its commands through the edge: list with attempts, retry, recover,
ping, and who may use them (the owner or an admin; anyone else gets 404)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import standardwebhooks
from aiohttp import web

from services.webhook_delivery.api.delivery_openapi import delivery_paths
from shared.config import Settings
from tests.conftest import Suite
from tests.delivery_support import Publisher, deliveries_of, sweep_marker, wait_indexed, wait_status
from tests.factories import indexed_subscription
from tests.receiver import Answer, Receiver, start_receiver

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def settings(delivery_settings: Settings) -> Settings:
    return dataclasses.replace(delivery_settings, webhook_retry_schedule=("0.2",), webhook_timeout=2.0)


@dataclasses.dataclass
class Env:
    suite: Suite
    webhook: web.Application
    conn: asyncpg.Connection


@pytest.fixture
def env(suite: Suite, conn: asyncpg.Connection) -> Env:
    """The suite of conftest, with its webhook app (to wait on its index)."""
    return Env(suite, suite.webhook_server.app, conn)


async def _subscribe(env: Env, owner: dict[str, Any], url: str, **kw: Any) -> dict[str, Any]:
    return await indexed_subscription(
        env.webhook, env.conn, url, owner_id=owner["id"], owner_roles=owner["roles"], **kw
    )


async def _accepted_for_owner_only(suite: Suite, path: str, owner: str, stranger: str) -> Any:
    """POST `path`: 404 with the stranger's token (no hint it exists), 202 with the owner's;
    what the 202 shows."""
    resp, _ = await suite.request("POST", path, token=stranger)
    assert resp.status == 404
    resp, shown = await suite.request("POST", path, token=owner)
    assert resp.status == 202, shown
    return shown


async def test_log_lists_attempts_to_owner_and_admin_only(env: Env, receiver: Receiver) -> None:
    suite = env.suite
    owner, _, token = await suite.new_user()
    _, _, stranger = await suite.new_user()
    admin = await suite.admin_token()
    receiver.script = [Answer(500, body=b"not yet")]
    sub = await _subscribe(env, owner, receiver.url, topics=["location.*"])
    async with Publisher(suite.settings) as pub:
        first = await pub.event("location.created", name="A")
        await wait_status(env.conn, sub["id"], "succeeded")
        second = await pub.event("location.updated", name="B")
        await wait_status(env.conn, sub["id"], "succeeded", 2)
    path = f"/v2/subscription/{sub['id']}/deliveries"
    resp, page = await suite.request("GET", path, token=token)
    assert resp.status == 200, page
    assert [d["eventId"] for d in page] == [second["id"], first["id"]]  # newest first
    oldest = page[1]
    assert oldest["status"] == "succeeded" and oldest["attemptCount"] == 2
    assert oldest["lane"] == "retry" and page[0]["lane"] == "first"
    assert [a["statusCode"] for a in oldest["attempts"]] == [500, 200]
    assert oldest["attempts"][0]["responseBody"] == "not yet" and oldest["attempts"][0]["error"]
    assert {"at", "durationMs"} <= oldest["attempts"][0].keys()
    # Paged with a Link header; the second page holds the rest.
    resp, one = await suite.request("GET", path + "?limit=1", token=token)
    assert [d["eventId"] for d in one] == [second["id"]]
    link = resp.headers["Link"]
    next_path = link[link.index("<") + 1 : link.index(">")]
    resp, rest = await suite.request("GET", next_path, token=token)
    assert [d["eventId"] for d in rest] == [first["id"]] and "Link" not in resp.headers
    # Filtered by status.
    resp, failed = await suite.request("GET", path + "?status=failed", token=token)
    assert resp.status == 200 and failed == []
    # An admin sees it; another member gets the same 404 as a missing subscription.
    resp, _ = await suite.request("GET", path, token=admin)
    assert resp.status == 200
    for who, where in ((stranger, path), (token, f"/v2/subscription/{uuid.uuid4()}/deliveries")):
        resp, problem = await suite.request("GET", where, token=who)
        assert resp.status == 404 and problem["status"] == 404
    for bad in ("?status=bogus", "?colour=red", "?cursor=%%%", "?limit=0"):
        resp, problem = await suite.request("GET", path + bad, token=token)
        assert resp.status == 400, (bad, problem)
        assert resp.content_type == "application/problem+json"
    resp, _ = await suite.request("GET", "/v2/subscription/not-a-uuid/deliveries", token=token)
    assert resp.status == 404
    resp, _ = await suite.request("GET", path)
    assert resp.status == 401


async def test_retry_and_recover_deliver_once_the_receiver_is_fixed(env: Env, receiver: Receiver) -> None:
    suite = env.suite
    owner, _, token = await suite.new_user()
    _, _, stranger = await suite.new_user()
    receiver.default = Answer(503)
    sub = await _subscribe(env, owner, receiver.url, topics=["location.created"])
    since = datetime.now(UTC) - timedelta(seconds=1)
    async with Publisher(suite.settings) as pub:
        one = await pub.event("location.created", name="One")
        two = await pub.event("location.created", name="Two")
        failed = await wait_status(env.conn, sub["id"], "failed", 2)
    assert len(receiver.requests) == 4  # two attempts each: the schedule has one retry
    by_event = {str(d["event_id"]): d for d in failed}
    receiver.default = Answer(200)
    base = f"/v2/subscription/{sub['id']}"

    retry_path = f"{base}/deliveries/{by_event[one['id']]['id']}/retry"
    shown = await _accepted_for_owner_only(suite, retry_path, token, stranger)
    assert shown["status"] == "pending" and shown["lane"] == "retry"
    await receiver.wait_for(5)
    assert receiver.requests[4].webhook_id == one["id"]
    await wait_status(env.conn, sub["id"], "succeeded", 1)
    resp, problem = await suite.request("POST", f"{base}/deliveries/{uuid.uuid4()}/retry", token=token)
    assert resp.status == 404, problem

    # Recover: a window that misses them sends nothing; one that holds them sends the rest.
    resp, result = await suite.request(
        "POST",
        f"{base}/recover",
        token=token,
        json={"since": "2000-01-01T00:00:00Z", "until": "2000-01-02T00:00:00Z"},
    )
    assert resp.status == 202 and result == {"deliveries": 0}
    resp, result = await suite.request(
        "POST", f"{base}/recover", token=token, json={"since": since.isoformat()}
    )
    assert resp.status == 202 and result == {"deliveries": 1}, result  # the other one succeeded
    await receiver.wait_for(6)
    await wait_status(env.conn, sub["id"], "succeeded", 2)
    marker = await sweep_marker(env.conn, sub["id"], receiver)  # sent after anything still due
    assert receiver.ids()[4:] == [one["id"], two["id"], marker]  # each exactly once more

    for body, status in (
        ({}, 422),
        ({"since": "yesterday"}, 422),
        ({"since": "2026-01-01T00:00:00"}, 422),  # no time zone
        ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, 422),
        ({"since": "2026-01-01T00:00:00Z", "extra": 1}, 422),
        ([], 400),
    ):
        resp, problem = await suite.request("POST", f"{base}/recover", token=token, json=body)
        assert resp.status == status, (body, problem)
        assert resp.content_type == "application/problem+json"


async def test_skipped_while_disabled_then_recovered(env: Env, receiver: Receiver) -> None:
    suite = env.suite
    owner, _, token = await suite.new_user()
    sub = await _subscribe(env, owner, receiver.url, topics=["location.deleted"], active=False)
    since = datetime.now(UTC) - timedelta(seconds=1)
    async with Publisher(suite.settings) as pub:
        gone = await pub.event("location.deleted", name="Old")
        await wait_status(env.conn, sub["id"], "skipped")
    base = f"/v2/subscription/{sub['id']}"
    resp, problem = await suite.request(
        "POST", f"{base}/recover", token=token, json={"since": since.isoformat()}
    )
    assert resp.status == 409, problem  # enable it first
    resp, problem = await suite.request("POST", f"{base}/ping", token=token)
    assert resp.status == 409, problem
    await env.conn.execute(
        "UPDATE subscriptions SET active = true, disabled_reason = NULL WHERE id = $1", sub["id"]
    )
    await wait_indexed(env.webhook, sub, active=True)
    resp, result = await suite.request(
        "POST", f"{base}/recover", token=token, json={"since": since.isoformat()}
    )
    assert resp.status == 202 and result == {"deliveries": 1}
    [got] = await receiver.wait_for(1)
    assert got.webhook_id == gone["id"]
    [delivery] = await wait_status(env.conn, sub["id"], "succeeded")
    assert delivery["attempts"] == 1


async def test_ping_sends_a_signed_ping_to_that_subscription_only(env: Env, receiver: Receiver) -> None:
    suite = env.suite
    owner, _, token = await suite.new_user()
    _, _, stranger = await suite.new_user()
    other = await start_receiver()
    try:
        # The ping ignores filters: this one would let nothing through.
        sub = await _subscribe(env, owner, receiver.url, topics=["*"], filter_={"type": "location.created"})
        bystander = await _subscribe(env, owner, other.url + "/b", topics=["*"])
        path = f"/v2/subscription/{sub['id']}/ping"
        shown = await _accepted_for_owner_only(suite, path, token, stranger)
        assert shown["topic"] == "webhook.ping" and shown["status"] == "pending"
        [got] = await receiver.wait_for(1)
        body = standardwebhooks.Webhook(sub["secret"]).verify(got.body, got.headers)
        assert body["type"] == "webhook.ping" and body["data"]["subscriptionId"] == str(sub["id"])
        assert got.webhook_id == shown["eventId"] == body["id"]
        await wait_status(env.conn, sub["id"], "succeeded")
        # The ping's one delivery was stored with its event, in one statement: none for another.
        stored = await env.conn.fetchval(
            "SELECT count(*) FROM deliveries WHERE event_id = $1", uuid.UUID(shown["eventId"])
        )
        assert stored == 1 and await deliveries_of(env.conn, bystander["id"]) == []
        assert other.requests == []
    finally:
        await other.stop()


def test_openapi_fragment_of_the_delivery_routes() -> None:
    paths, schemas = delivery_paths()
    assert set(paths) == {
        "/v2/subscription/{id}/deliveries",
        "/v2/subscription/{id}/deliveries/{deliveryId}/retry",
        "/v2/subscription/{id}/recover",
        "/v2/subscription/{id}/ping",
    }
    for methods in paths.values():
        for op in methods.values():
            assert {"operationId", "summary", "tags", "parameters", "responses"} <= op.keys()
            errors = {k: v for k, v in op["responses"].items() if int(k) >= 400}
            assert errors and all(
                v == {"$ref": f"#/components/responses/Problem{k}"} for k, v in errors.items()
            )
            assert any(200 <= int(k) < 300 for k in op["responses"])
    names = {
        "SubscriptionDelivery",
        "SubscriptionDeliveryAttempt",
        "SubscriptionRecoverRequest",
        "SubscriptionRecoverResult",
    }
    assert names == set(schemas)
    text = str(paths) + str(schemas)
    for ref in {part.split("'")[0] for part in text.split("#/components/schemas/")[1:]}:
        assert ref in schemas, ref

"""The delivery log and its commands through the edge: list with attempts, retry, recover,
ping, and who may use them (the owner or an admin; anyone else gets 404)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import asyncpg
import pytest
import standardwebhooks
from aiohttp import web

from services.webhook_delivery.api.delivery_openapi import delivery_paths
from services.webhook_delivery.app import MIGRATIONS
from shared.config import Settings
from tests.conftest import Suite
from tests.delivery_support import (
    Publisher,
    deliveries_of,
    insert_subscription,
    sweep_marker,
    wait_indexed,
    wait_status,
)
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
        "/v2/subscription/{id}/replay",
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
        "SubscriptionReplayRequest",
        "SubscriptionReplayResult",
    }
    assert names == set(schemas)
    text = str(paths) + str(schemas)
    for ref in {part.split("'")[0] for part in text.split("#/components/schemas/")[1:]}:
        assert ref in schemas, ref


# -- one delivery and the statistics (delivery_detail.py) -----------------------------------


async def test_one_delivery_shows_its_attempts_and_the_headers_they_sent(
    env: Env, receiver: Receiver
) -> None:
    suite = env.suite
    owner, _, token = await suite.new_user()
    _, _, stranger = await suite.new_user()
    receiver.script = [Answer(500, body=b"not yet")]
    custom = {"Authorization": "Bearer receiver-token", "X-Api-Key": "k1", "X-Team": "blue"}
    sub = await _subscribe(env, owner, receiver.url, topics=["location.*"], headers=custom)
    other = await _subscribe(env, owner, receiver.url + "?other", topics=["nothing.matches"])
    async with Publisher(suite.settings) as pub:
        event = await pub.event("location.created", name="A")
        (done,) = await wait_status(env.conn, sub["id"], "succeeded")
    path = f"/v2/subscription/{sub['id']}/deliveries/{done['id']}"
    resp, shown = await suite.request("GET", path, token=token)
    assert resp.status == 200, shown
    assert shown["eventId"] == event["id"] and shown["status"] == "succeeded" and shown["attemptCount"] == 2
    assert [a["statusCode"] for a in shown["attempts"]] == [500, 200]  # in order
    assert shown["attempts"][0]["responseBody"] == "not yet" and shown["attempts"][1]["error"] is None
    for attempt, sent in zip(shown["attempts"], receiver.requests, strict=True):
        headers = attempt["requestHeaders"]
        # What the receiver got, but the signature and the credentials masked.
        for name in ("webhook-id", "webhook-timestamp", "content-type", "user-agent"):
            assert headers[name] == sent.headers[name], name
        assert headers["x-team" if "x-team" in headers else "X-Team"] == "blue"
        assert headers["webhook-signature"] == "v1,********" != sent.headers["webhook-signature"]
        assert headers["Authorization"] == headers["X-Api-Key"] == "********"
    # The list shows the same delivery, without the headers.
    resp, page = await suite.request("GET", f"/v2/subscription/{sub['id']}/deliveries", token=token)
    assert [{k: v for k, v in a.items()} for a in page[0]["attempts"]] == [
        {k: v for k, v in a.items() if k != "requestHeaders"} for a in shown["attempts"]
    ]
    resp, _ = await suite.request("GET", path, token=await suite.admin_token())
    assert resp.status == 200
    for who, where in (
        (stranger, path),  # not theirs
        (token, f"/v2/subscription/{other['id']}/deliveries/{done['id']}"),  # another subscription's
        (token, f"/v2/subscription/{sub['id']}/deliveries/{uuid.uuid4()}"),
        (token, f"/v2/subscription/{sub['id']}/deliveries/not-a-uuid"),
    ):
        resp, problem = await suite.request("GET", where, token=who)
        assert resp.status == 404, (where, problem)
    resp, problem = await suite.request("GET", path + "?colour=red", token=token)
    assert resp.status == 400, problem

    # The statistics of what just happened, over the minutes the attempts started in.
    first, last = shown["attempts"][0]["at"], shown["attempts"][1]["at"]
    query = {"since": first, "until": last.replace("Z", "") + "+00:00", "bucket": "minute"}
    resp, stats = await suite.request(
        "GET", f"/v2/subscription/{sub['id']}/stats?" + urlencode(query), token=token
    )
    assert resp.status == 200, stats
    assert sum(b["attempts"] for b in stats) == 2 and sum(b["succeeded"] for b in stats) == 1
    assert sum(b["failed"] for b in stats) == 0 and sum(b["pending"] for b in stats) == 0


async def _log_attempt(
    conn: asyncpg.Connection, delivery_id: uuid.UUID, at: datetime, code: int, ms: float, status: str
) -> None:
    """An attempt as the worker records one: the delivery's new status in the same statement."""
    await conn.execute(
        "WITH d AS (UPDATE deliveries SET status = $5, attempts = attempts + 1 WHERE id = $1 RETURNING id)"
        " INSERT INTO delivery_attempts (delivery_id, attempted_at, status_code, duration_ms, error)"
        " SELECT id, $2, $3, $4, CASE WHEN $3 >= 300 THEN 'the receiver answered ' || $3 END FROM d",
        delivery_id,
        at,
        code,
        ms,
        status,
    )


async def _delivery(conn: asyncpg.Connection, sub_id: uuid.UUID, created: datetime) -> uuid.UUID:
    event_id, delivery_id = uuid.uuid4(), uuid.uuid4()
    await conn.execute(
        "INSERT INTO webhook_events (id, topic, body) VALUES ($1, 'location.created', '{}')", event_id
    )
    await conn.execute(
        "INSERT INTO deliveries (id, subscription_id, event_id, topic, status, created_at, next_attempt_at)"
        " VALUES ($1, $2, $3, 'location.created', 'pending', $4, '2100-01-01Z')",
        delivery_id,
        sub_id,
        event_id,
        created,
    )
    return delivery_id


async def test_stats_count_each_bucket_of_a_known_log(env: Env) -> None:
    suite = env.suite
    owner, _, token = await suite.new_user()
    _, _, stranger = await suite.new_user()
    # A closed port: nothing here is ever sent (the rows are written as the worker would).
    sub = await insert_subscription(env.conn, "http://127.0.0.1:9/never", owner_id=owner["id"])
    t0 = datetime(2026, 1, 1, 10, tzinfo=UTC)
    # 10:05 one succeeds at the second attempt (the first at 10:05, the second at 11:20);
    # 10:30 one fails twice and is given up; 11:40 one fails once and waits for a retry.
    retried = await _delivery(env.conn, sub["id"], t0 + timedelta(minutes=5))
    await _log_attempt(env.conn, retried, t0 + timedelta(minutes=5), 500, 100.0, "pending")
    given_up = await _delivery(env.conn, sub["id"], t0 + timedelta(minutes=30))
    await _log_attempt(env.conn, given_up, t0 + timedelta(minutes=30), 503, 1000.0, "pending")
    await _log_attempt(env.conn, given_up, t0 + timedelta(minutes=31), 503, 1000.0, "failed")
    await _log_attempt(env.conn, retried, t0 + timedelta(minutes=80), 200, 10.0, "succeeded")
    waiting = await _delivery(env.conn, sub["id"], t0 + timedelta(minutes=100))
    await _log_attempt(env.conn, waiting, t0 + timedelta(minutes=100), 500, 10.0, "pending")

    base = f"/v2/subscription/{sub['id']}/stats"
    resp, hours = await suite.request(
        "GET", base + "?since=2026-01-01T10:00:00Z&until=2026-01-01T13:00:00Z&bucket=hour", token=token
    )
    assert resp.status == 200, hours
    assert hours == [
        {"start": "2026-01-01T10:00:00.000Z", "succeeded": 0, "failed": 1, "pending": 0, "attempts": 3,
         "p50Ms": hours[0]["p50Ms"], "p95Ms": hours[0]["p95Ms"]},
        {"start": "2026-01-01T11:00:00.000Z", "succeeded": 1, "failed": 0, "pending": 1, "attempts": 2,
         "p50Ms": hours[1]["p50Ms"], "p95Ms": hours[1]["p95Ms"]},
        {"start": "2026-01-01T12:00:00.000Z", "succeeded": 0, "failed": 0, "pending": 0, "attempts": 0,
         "p50Ms": None, "p95Ms": None},
    ]  # fmt: skip
    # Durations 100, 1000, 1000 ms: the median and the 95th percentile within a bucket's 19%.
    assert 1000 / 1.19 <= hours[0]["p50Ms"] <= 1000 * 1.19 and 1000 / 1.19 <= hours[0]["p95Ms"] <= 1000 * 1.19
    assert 10 / 1.19 <= hours[1]["p50Ms"] <= 10 * 1.19
    # Unaligned bounds round out to whole buckets; by minute, each attempt in its minute.
    resp, minutes = await suite.request(
        "GET",
        base + "?since=2026-01-01T10:29:30%2B00:00&until=2026-01-01T11:31:10Z&bucket=minute",
        token=token,
    )
    assert resp.status == 200 and len(minutes) == 63 and minutes[0]["start"] == "2026-01-01T10:29:00.000Z"
    assert [(m["start"][11:16], m["attempts"], m["failed"]) for m in minutes if m["attempts"]] == [
        ("10:30", 1, 0),
        ("10:31", 1, 1),
        ("11:20", 1, 0),
    ]
    # By day, in another time zone's notation: the same totals.
    resp, days = await suite.request(
        "GET", base + "?since=2026-01-01T05:00:00-05:00&bucket=day&until=2026-01-02T00:00:00Z", token=token
    )
    assert resp.status == 200, days
    assert [(d["attempts"], d["succeeded"], d["failed"], d["pending"]) for d in days] == [(5, 1, 1, 1)]
    # The default window: the last 24 hours by hour, ending with the current hour.
    resp, default = await suite.request("GET", base, token=token)
    assert resp.status == 200 and len(default) in (24, 25)

    resp, _ = await suite.request("GET", base, token=stranger)
    assert resp.status == 404
    resp, _ = await suite.request("GET", base, token=await suite.admin_token())
    assert resp.status == 200
    for query, status in (
        ("?bucket=week", 422),
        ("?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", 422),
        ("?since=2026-01-01T00:00:00Z&until=2026-01-01T00:00:00Z", 422),
        ("?since=2026-01-01T00:00:00Z&until=2026-01-03T00:00:00Z&bucket=minute", 422),  # 2880 buckets
        ("?since=yesterday", 422),
        ("?until=2026-01-01T00:00:00", 422),  # no offset
        ("?since=0001-01-01T00:00:00Z&until=9999-12-31T23:59:59Z&bucket=day", 422),
        ("?until=0001-01-01T00:30:00Z&bucket=day", 422),  # the default window leaves year 1
        ("?colour=red", 400),
    ):
        resp, problem = await suite.request("GET", base + query, token=token)
        assert resp.status == status, (query, problem)
        assert resp.content_type == "application/problem+json"
    resp, problem = await suite.request(
        "GET", base + "?bucket=minute&since=2026-01-01T00:00:00Z", token=token
    )
    assert resp.status == 422 and "at most 1500" in problem["detail"]
    # An upgrade fills the rollup from the attempt log as the trigger kept it.
    kept = await _rollup(env.conn, sub["id"])
    assert (
        len(kept) == 10
    )  # minute rows 10:05 f, 10:30 f, 10:31 f, 11:20 t, 11:40 f; hours 10 f, 11 t and f; one day t and f
    assert await _rollup_rebuilt(env.conn, sub["id"]) == kept


async def _rollup(conn: asyncpg.Connection, sub_id: uuid.UUID) -> list[tuple[Any, ...]]:
    rows = await conn.fetch(
        "SELECT span, start, delivered, attempts, failed, durations FROM delivery_stats"
        " WHERE subscription_id = $1 ORDER BY 1, 2, 3",
        sub_id,
    )
    return [tuple(r) for r in rows]


async def _rollup_rebuilt(conn: asyncpg.Connection, sub_id: uuid.UUID) -> list[tuple[Any, ...]]:
    """The rollup as migration 0009's backfill makes it (in a transaction undone after)."""
    sql = (MIGRATIONS / "0009_delivery_stats.sql").read_text()
    backfill = sql[sql.index("INSERT INTO delivery_stats (") : sql.index("-- Deliveries still pending")]
    undone = conn.transaction()
    await undone.start()
    try:
        await conn.execute("DELETE FROM delivery_stats")
        await conn.execute(backfill)
        return await _rollup(conn, sub_id)
    finally:
        await undone.rollback()

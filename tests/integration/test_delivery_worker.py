"""The delivery worker against real PostgreSQL, RabbitMQ and local receivers: signatures,
retries, Retry-After, 410, redirects, timeouts, the circuit breaker, the per-subscription cap,
auto-disable and the SSRF check at connect time."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import standardwebhooks
from aiohttp import web
from prometheus_client import REGISTRY

from services.webhook_delivery.app import create_app
from services.webhook_delivery.engine.sender import USER_AGENT
from services.webhook_delivery.engine.wiring import WORKER
from shared.config import Settings
from shared.webhooks import WebhookVerificationError, new_secret, verify
from tests.conftest import close_broker_connections
from tests.delivery_support import (
    Publisher,
    attempts_of,
    deliveries_of,
    insert_subscription,
    make_due,
    stranded,
    sweep_marker,
    wait_indexed,
    wait_scheduled,
    wait_status,
    wait_until,
)
from tests.factories import indexed_subscription, published
from tests.receiver import Answer, Receiver, start_receiver

pytestmark = pytest.mark.timeout(60)

Start = Callable[..., Awaitable[web.Application]]
METRICS = (
    ("herald_webhook_fanout_deliveries_total", {"outcome": "pending"}),
    ("herald_webhook_attempts_total", {"outcome": "succeeded"}),
    ("herald_webhook_attempt_duration_seconds_count", {}),
)


@pytest.fixture
def settings(delivery_settings: Settings) -> Settings:
    return dataclasses.replace(
        delivery_settings,
        webhook_retry_schedule=("0.2", "0.4"),
        webhook_sweep_seconds=0.1,
        webhook_timeout=1.0,
        webhook_connect_timeout=1.0,
    )


@pytest.fixture
async def start(aiohttp_server: Any, settings: Settings) -> Start:
    """Start the webhook delivery service with these settings changed."""

    async def go(**changes: Any) -> web.Application:
        server = await aiohttp_server(create_app(dataclasses.replace(settings, **changes)))
        return server.app

    return go


@pytest.fixture
async def receivers() -> AsyncIterator[Callable[..., Awaitable[Receiver]]]:
    started: list[Receiver] = []

    async def make(*answers: Answer, default: Answer | None = None) -> Receiver:
        started.append(await start_receiver(*answers, default=default))
        return started[-1]

    yield make
    for receiver in started:
        await receiver.stop()


async def test_delivery_is_signed_and_verifies(
    start: Start, conn: asyncpg.Connection, settings: Settings, receivers: Any
) -> None:
    app = await start()
    receiver = await receivers()
    secret = new_secret()
    sub = await insert_subscription(
        conn, receiver.url, ["location.created"], secret=secret, headers={"X-Team": "blue"}
    )
    await wait_indexed(app, sub)
    before = {name: REGISTRY.get_sample_value(name, labels) or 0 for name, labels in METRICS}
    async with Publisher(settings) as pub:
        event = await pub.event("location.created", name="Hall")
    [got] = await receiver.wait_for(1)
    assert got.headers["webhook-id"] == event["id"]
    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"] == USER_AGENT and USER_AGENT.startswith("Herald-Webhooks/")
    assert got.headers["x-team"] == "blue"
    assert len(got.headers["webhook-signature"].split(" ")) == 1
    # The standard's own library and Herald's verifier both accept it ...
    assert standardwebhooks.Webhook(secret).verify(got.body, got.headers)["id"] == event["id"]
    verify(secret, got.headers, got.body)
    # ... and neither accepts another secret or a changed body.
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(new_secret()).verify(got.body, got.headers)
    with pytest.raises(WebhookVerificationError):
        verify(secret, got.headers, got.body + b" ")
    await wait_status(conn, sub["id"], "succeeded")
    for name, labels in METRICS:  # fan-out, the attempt and its latency are all counted
        assert (REGISTRY.get_sample_value(name, labels) or 0) >= before[name] + 1, name


async def test_both_secrets_sign_during_a_rotation(
    start: Start, conn: asyncpg.Connection, settings: Settings, receivers: Any
) -> None:
    app = await start()
    receiver = await receivers()
    new, old, expired = new_secret(), new_secret(), new_secret()
    now = datetime.now(UTC)
    rotating = await insert_subscription(
        conn,
        receiver.url,
        ["location.updated"],
        secret=new,
        previous_secret=old,
        previous_secret_until=now + timedelta(hours=24),
    )
    rotated = await insert_subscription(
        conn,
        receiver.url,
        ["location.deleted"],
        secret=new,
        previous_secret=expired,
        previous_secret_until=now - timedelta(seconds=1),
    )
    await wait_indexed(app, rotating, rotated)
    async with Publisher(settings) as pub:
        during = await pub.event("location.updated", name="A")
        await receiver.wait_for(1)
        after = await pub.event("location.deleted", name="B")
        await receiver.wait_for(2)
    by_id = {r.webhook_id: r for r in receiver.requests}
    both = by_id[during["id"]]
    assert len(both.headers["webhook-signature"].split(" ")) == 2
    for secret in (new, old):
        standardwebhooks.Webhook(secret).verify(both.body, both.headers)
        verify(secret, both.headers, both.body)
    single = by_id[after["id"]]
    assert len(single.headers["webhook-signature"].split(" ")) == 1
    verify(new, single.headers, single.body)
    with pytest.raises(WebhookVerificationError):
        verify(expired, single.headers, single.body)


async def test_failing_twice_then_ok_takes_three_attempts(
    start: Start, conn: asyncpg.Connection, settings: Settings, receivers: Any
) -> None:
    app = await start(webhook_retry_schedule=("30", "60"))
    receiver = await receivers(Answer(500, body=b"boom"), Answer(502))
    sub = await indexed_subscription(app, conn, receiver.url, ["event.approved"])
    async with Publisher(settings) as pub:
        event = await pub.event("event.approved", title="T", status="approved", ownerId=str(uuid.uuid4()))
    # The schedule as PostgreSQL holds it: 30 s after the first failure, 60 s after the second.
    assert await wait_scheduled(conn, sub["id"], 1) == 30.0
    await make_due(conn, sub["id"])  # the 30 s have passed
    assert await wait_scheduled(conn, sub["id"], 2) == 60.0
    await make_due(conn, sub["id"])
    await receiver.wait_for(3)
    assert receiver.ids() == [event["id"]] * 3
    [delivery] = await wait_status(conn, sub["id"], "succeeded")
    assert delivery["attempts"] == 3
    log = await attempts_of(conn, delivery["id"])
    assert [a["status_code"] for a in log] == [500, 502, 200]
    assert log[0]["response_body"] == "boom" and log[2]["error"] is None
    assert "500" in log[0]["error"]
    assert await conn.fetchval("SELECT failing_since FROM subscriptions WHERE id = $1", sub["id"]) is None


async def test_always_failing_ends_failed_after_the_schedule(
    start: Start, conn: asyncpg.Connection, settings: Settings, receivers: Any
) -> None:
    app = await start()
    receiver = await receivers(default=Answer(500, body=b"x" * 5000))
    sub = await indexed_subscription(app, conn, receiver.url, ["location.created"])
    async with Publisher(settings) as pub:
        await pub.event("location.created", name="Never")
    [delivery] = await wait_status(conn, sub["id"], "failed")
    assert delivery["attempts"] == 3 and delivery["next_attempt_at"] is None
    log = await attempts_of(conn, delivery["id"])
    assert len(log) == 3 and all(a["status_code"] == 500 for a in log)
    assert len(log[0]["response_body"]) == 1024  # only the first KiB is kept
    await sweep_marker(conn, sub["id"], receiver)  # the sweeper has moved on past it
    assert receiver.ids().count(str(delivery["event_id"])) == 3
    failing_since = await conn.fetchval("SELECT failing_since FROM subscriptions WHERE id = $1", sub["id"])
    assert failing_since is not None


async def test_gone_disables_the_subscription_and_later_events_are_skipped(
    start: Start, conn: asyncpg.Connection, settings: Settings, receivers: Any
) -> None:
    app = await start()
    receiver = await receivers(Answer(410))
    sub = await indexed_subscription(app, conn, receiver.url, ["location.*"])
    async with Publisher(settings) as pub:
        await pub.event("location.created", name="A")
        [delivery] = await wait_status(conn, sub["id"], "failed")
        assert delivery["attempts"] == 1
        row = await conn.fetchrow(
            "SELECT active, disabled_reason, version FROM subscriptions WHERE id = $1", sub["id"]
        )
        assert row["active"] is False and "410" in row["disabled_reason"]
        assert row["version"] == sub["version"] + 1  # a new ETag: the API shows the change
        await wait_indexed(app, sub, active=False)
        await pub.event("location.updated", name="B")
        await wait_status(conn, sub["id"], "skipped")
    assert len(receiver.requests) == 1


async def test_retry_after_is_honoured_within_bounds(
    start: Start, conn: asyncpg.Connection, settings: Settings, receivers: Any
) -> None:
    app = await start(webhook_retry_after_max=30)
    receiver = await receivers(
        Answer(429, headers={"Retry-After": "20"}), Answer(503, headers={"Retry-After": "3600"})
    )
    sub = await indexed_subscription(app, conn, receiver.url, ["location.created"])
    async with Publisher(settings) as pub:
        await pub.event("location.created", name="Busy")
    # Asked for 20 s (instead of the schedule's 0.2 s), then for an hour (capped at 30 s
    # instead of 0.4 s): as scheduled in PostgreSQL.
    assert await wait_scheduled(conn, sub["id"], 1) == 20.0
    await make_due(conn, sub["id"])
    assert await wait_scheduled(conn, sub["id"], 2) == 30.0
    await make_due(conn, sub["id"])
    await receiver.wait_for(3)
    await wait_status(conn, sub["id"], "succeeded")


async def test_redirects_are_not_followed_and_timeouts_fail(
    start: Start, conn: asyncpg.Connection, settings: Settings, receivers: Any
) -> None:
    app = await start(webhook_retry_schedule=())
    target = await receivers()
    redirecting = await receivers(default=Answer(307, headers={"Location": target.url}))
    hanging = await receivers(default=Answer(200, delay=60))
    sub_redirect = await insert_subscription(conn, redirecting.url, ["location.created"])
    sub_hang = await insert_subscription(conn, hanging.url, ["location.created"])
    await wait_indexed(app, sub_redirect, sub_hang)
    async with Publisher(settings) as pub:
        await pub.event("location.created", name="Moved")
    [redirected] = await wait_status(conn, sub_redirect["id"], "failed")
    [timed_out] = await wait_status(conn, sub_hang["id"], "failed")
    assert redirected["last_status_code"] == 307
    assert target.requests == []
    [log] = await attempts_of(conn, timed_out["id"])
    # Ended by the 1 s timeout, not by the answer (60 s away).
    assert log["status_code"] is None and "within 1 s" in log["error"]
    assert 900 <= log["duration_ms"] < 60_000


async def test_breaker_holds_a_failing_subscription_without_spending_attempts(
    start: Start, conn: asyncpg.Connection, settings: Settings, receivers: Any
) -> None:
    app = await start(
        webhook_breaker_failures=2,
        webhook_breaker_seconds=30,
        webhook_retry_schedule=("0.1", "0.1", "0.1", "0.1"),
    )
    breakers = app[WORKER].breakers
    now = [1000.0]
    breakers.clock = lambda: now[0]  # the circuit's time moves when the test says so
    receiver = await receivers(Answer(500), Answer(500), Answer(500))
    sub = await indexed_subscription(app, conn, receiver.url, ["location.created"])
    async with Publisher(settings) as pub:
        await pub.event("location.created", name="Flaky")
    # One failure: retried on the schedule. Two open the circuit: the retry is held (no
    # attempt) until the circuit half-opens, 30 s on.
    assert await wait_scheduled(conn, sub["id"], 2, longer_than=1) == 30.0
    assert len(receiver.requests) == 2
    now[0] += 30
    await make_due(conn, sub["id"])
    # The probe fails: the circuit opens again, and the next retry is held again.
    assert await wait_scheduled(conn, sub["id"], 3, longer_than=1) == 30.0
    now[0] += 30
    await make_due(conn, sub["id"])
    [delivery] = await wait_status(conn, sub["id"], "succeeded")
    log = await attempts_of(conn, delivery["id"])
    assert [a["status_code"] for a in log] == [500, 500, 500, 200]
    assert delivery["attempts"] == 4  # held time spent no attempt


async def _slowly_served(
    start: Start, receivers: Any, conn: asyncpg.Connection, in_flight: int, delay: float
) -> tuple[web.Application, Receiver, dict[str, Any]]:
    """The service with a cap of `in_flight` attempts per subscription, a receiver that takes
    `delay` s to answer 200, and a subscription of it to location.created."""
    app = await start(webhook_max_in_flight=in_flight, webhook_timeout=5.0)
    slow = await receivers(default=Answer(200, delay=delay))
    sub = await indexed_subscription(app, conn, slow.url, ["location.created"])
    return app, slow, sub


async def test_per_subscription_cap_on_attempts_in_flight(
    start: Start, conn: asyncpg.Connection, settings: Settings, receivers: Any
) -> None:
    _, slow, sub = await _slowly_served(start, receivers, conn, 2, 0.3)
    await published(settings, "location.created", 8)
    await slow.wait_for(8)
    await wait_status(conn, sub["id"], "succeeded", 8)
    assert slow.max_in_flight == 2
    assert all(d["attempts"] == 1 for d in await deliveries_of(conn, sub["id"]))


async def test_failing_for_too_long_disables_the_subscription(
    start: Start, conn: asyncpg.Connection, settings: Settings, receivers: Any
) -> None:
    app = await start(webhook_disable_after=1, webhook_retry_schedule=("0.3",) * 10)
    receiver = await receivers(default=Answer(500))
    sub = await indexed_subscription(app, conn, receiver.url, ["location.created"])
    async with Publisher(settings) as pub:
        await pub.event("location.created", name="Doomed")

        async def disabled() -> Any:
            return await conn.fetchval(
                "SELECT disabled_reason FROM subscriptions WHERE id = $1 AND NOT active", sub["id"]
            )

        reason = await wait_until(disabled, what="auto-disable")
        assert "failed" in reason
        await wait_indexed(app, sub, active=False)
        await pub.event("location.created", name="After")
        await wait_status(conn, sub["id"], "skipped", 1)
    # The delivery that was still retrying is kept (skipped) for recover, not attempted again.
    await wait_until(
        lambda: _statuses(conn, sub["id"], {"skipped", "failed"}), what="the first delivery to stop"
    )


async def _statuses(conn: asyncpg.Connection, sub_id: uuid.UUID, allowed: set[str]) -> bool:
    return all(d["status"] in allowed for d in await deliveries_of(conn, sub_id))


async def test_private_addresses_are_refused_at_connect_time(
    start: Start, conn: asyncpg.Connection, settings: Settings, receivers: Any
) -> None:
    app = await start(webhook_allow_private=False, webhook_retry_schedule=())
    receiver = await receivers()
    port = receiver.url.split(":")[2].split("/")[0]
    literal = await insert_subscription(conn, receiver.url, ["location.created"])
    by_name = await insert_subscription(conn, f"http://localhost:{port}/hook", ["location.created"])
    mapped = await insert_subscription(conn, f"http://[::ffff:127.0.0.1]:{port}/hook", ["location.created"])
    await wait_indexed(app, literal, by_name, mapped)
    async with Publisher(settings) as pub:
        await pub.event("location.created", name="Internal")
    for sub in (literal, by_name, mapped):
        [delivery] = await wait_status(conn, sub["id"], "failed")
        [log] = await attempts_of(conn, delivery["id"])
        assert log["status_code"] is None and log["error"].startswith("refused to connect"), log
    assert receiver.requests == []


async def test_stopping_hands_back_an_attempt_in_flight(
    aiohttp_server: Any, conn: asyncpg.Connection, settings: Settings, receivers: Any
) -> None:
    hanging = await receivers(default=Answer(200, delay=20))
    changed = dataclasses.replace(settings, webhook_timeout=10.0, shutdown_timeout=0.5)
    server = await aiohttp_server(create_app(changed))
    sub = await indexed_subscription(server.app, conn, hanging.url, ["location.created"])
    async with Publisher(settings) as pub:
        await pub.event("location.created", name="Interrupted")
    await hanging.wait_for(1)
    [leased] = await deliveries_of(conn, sub["id"])
    assert leased["lease_until"] is not None
    await server.close()  # SIGTERM's path: the cleanup contexts run
    [handed_back] = await deliveries_of(conn, sub["id"])
    # No attempt was recorded (it did not wait for the 10 s timeout, which records one), and
    # no lease blocks another worker from sending it right away.
    assert handed_back["status"] == "pending" and handed_back["attempts"] == 0
    assert handed_back["lease_until"] is None
    assert await conn.fetchval("SELECT next_attempt_at <= now() FROM deliveries WHERE id = $1", leased["id"])


async def test_stopping_hands_back_first_attempts_waiting_for_their_turn(
    aiohttp_server: Any, conn: asyncpg.Connection, settings: Settings, receivers: Any
) -> None:
    """The fan-out leases first attempts to its own worker; those still waiting for the
    subscription's cap when the worker stops are due again at once, not after their lease."""
    hanging = await receivers(default=Answer(200, delay=20))
    healthy = await receivers()
    changed = dataclasses.replace(
        settings, webhook_timeout=10.0, shutdown_timeout=0.5, webhook_max_in_flight=1
    )
    server = await aiohttp_server(create_app(changed))
    sub = await insert_subscription(conn, hanging.url, ["location.created"])
    witness = await insert_subscription(conn, healthy.url, ["location.created"])
    await wait_indexed(server.app, sub, witness)
    await published(settings, "location.created", 3, "Queued ")
    await hanging.wait_for(1)
    await wait_until(lambda: _count(conn, sub["id"], 3), what="three deliveries")
    # The same events' deliveries to another subscription were sent as they were fanned out:
    # had the cap not held them, the hanging one's would have gone out with them.
    await wait_status(conn, witness["id"], "succeeded", 3)
    assert len(hanging.requests) == 1  # the cap: one at a time, the other two wait here
    assert all(d["lease_until"] is not None for d in await deliveries_of(conn, sub["id"]))
    await server.close()
    after = await deliveries_of(conn, sub["id"])
    assert [d["status"] for d in after] == ["pending"] * 3
    assert all(d["lease_until"] is None and d["attempts"] == 0 for d in after), after
    due = await conn.fetchval(
        "SELECT bool_and(next_attempt_at <= now()) FROM deliveries WHERE subscription_id = $1", sub["id"]
    )
    assert due


async def test_first_attempts_waiting_here_are_skipped_once_the_subscription_is_disabled(
    start: Start, conn: asyncpg.Connection, settings: Settings, receivers: Any
) -> None:
    app, slow, sub = await _slowly_served(start, receivers, conn, 1, 0.5)
    await published(settings, "location.created", 3, "Waiting ")
    await slow.wait_for(1)
    await conn.execute("UPDATE subscriptions SET active = false WHERE id = $1", sub["id"])
    await wait_indexed(app, sub, active=False)
    await wait_status(conn, sub["id"], "skipped", 2)
    await wait_status(conn, sub["id"], "succeeded", 1)  # the one under way when it was disabled
    assert len(slow.requests) == 1  # the two skipped ones were decided before any send


async def _count(conn: asyncpg.Connection, sub_id: uuid.UUID, n: int) -> bool:
    return len(await deliveries_of(conn, sub_id)) >= n


@pytest.mark.slow
async def test_broker_connection_cut_mid_stream_loses_nothing(
    start: Start, conn: asyncpg.Connection, settings: Settings, receivers: Any
) -> None:
    app = await start()
    receiver = await receivers(default=Answer(200, delay=0.05))
    sub = await indexed_subscription(app, conn, receiver.url, ["location.created"])
    async with Publisher(settings) as pub:
        ids = [(await pub.event("location.created", name=f"Before {i}"))["id"] for i in range(10)]
        # Cut from the broker's side while lane messages are out: acks of attempts in flight
        # fail, publishes may fail; the robust connection comes back with its consumers.
        assert close_broker_connections(f"{settings.queue_prefix}.webhook_delivery") >= 1
        ids += [(await pub.event("location.created", name=f"After {i}"))["id"] for i in range(10)]
        await wait_status(conn, sub["id"], "succeeded", 20, timeout=60)
    assert set(receiver.ids()) == set(ids)


async def test_sweeper_sends_what_no_message_carries_and_respects_live_leases(
    start: Start, conn: asyncpg.Connection, settings: Settings, receivers: Any
) -> None:
    app = await start()
    receiver = await receivers()
    sub = await indexed_subscription(app, conn, receiver.url, ["location.created"])
    lost = await stranded(conn, sub["id"])
    expired = await stranded(conn, sub["id"], -1.0)
    held = await stranded(conn, sub["id"], 3600.0)
    await receiver.wait_for(2)
    marker = await sweep_marker(conn, sub["id"], receiver)
    assert sorted(receiver.ids()) == sorted([lost, expired, marker])  # the live lease is respected
    await conn.execute(
        "UPDATE deliveries SET lease_until = now() - interval '1 second' WHERE event_id = $1", uuid.UUID(held)
    )
    await receiver.wait_for(4)
    assert receiver.ids()[3] == held
    await wait_status(conn, sub["id"], "succeeded", 4)

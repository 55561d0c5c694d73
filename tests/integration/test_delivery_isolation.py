"""One hanging receiver must not delay the others: the per-subscription cap keeps it from
taking the worker's slots (here only 8), so a healthy receiver's latency stays low."""

from __future__ import annotations

import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from services.webhook_delivery.app import create_app
from shared.config import Settings
from tests.conftest import make_settings
from tests.delivery_support import (
    Publisher,
    connect,
    insert_subscription,
    wait_indexed,
    wait_status,
    wait_until,
)
from tests.receiver import Answer, start_receiver

pytestmark = pytest.mark.timeout(90)
EVENTS = 12


@pytest.fixture
def settings(database_url: str, amqp_prefix: str, signing_pem: str) -> Settings:
    return make_settings(
        database_url,
        amqp_prefix,
        signing_pem,
        webhook_allow_private=True,
        webhook_retry_schedule=("30",),
        webhook_sweep_seconds=0.2,
        webhook_timeout=1.5,
        webhook_concurrency=8,  # fewer slots than the hanging receiver's deliveries
        webhook_max_in_flight=2,
        webhook_breaker_failures=1000,
    )


@pytest.fixture
async def engine(aiohttp_server: Any, settings: Settings) -> AsyncIterator[web.Application]:
    server = await aiohttp_server(create_app(settings))
    yield server.app


async def test_hanging_receiver_does_not_delay_a_healthy_one(
    engine: web.Application, settings: Settings
) -> None:
    healthy = await start_receiver()
    hanging = await start_receiver(default=Answer(200, delay=30))
    conn = await connect(settings)
    try:
        ok_sub = await insert_subscription(conn, healthy.url, ["location.created"])
        stuck_sub = await insert_subscription(conn, hanging.url, ["location.created"])
        await wait_indexed(engine, ok_sub, stuck_sub)
        sent_at: dict[str, float] = {}
        async with Publisher(settings) as pub:
            for i in range(EVENTS):
                sent_at[(await pub.event("location.created", name=f"L{i}"))["id"]] = time.monotonic()
        await healthy.wait_for(EVENTS, timeout=10)
        healthy_latency = [r.at - sent_at[r.webhook_id] for r in healthy.requests]
        # Every hanging attempt ends at the timeout; the cap lets two run at a time.
        await hanging.wait_for(EVENTS, timeout=20)

        async def attempts() -> list[Any] | None:
            rows = await conn.fetch(
                "SELECT a.attempted_at, a.duration_ms FROM deliveries d"
                " JOIN delivery_attempts a ON a.delivery_id = d.id WHERE d.subscription_id = $1",
                stuck_sub["id"],
            )
            return rows if len(rows) >= EVENTS else None

        rows = await wait_until(attempts, what="every hanging attempt to time out")
        hanging_latency = [r.at - sent_at[r.webhook_id] for r in hanging.requests[:EVENTS]]
        print(
            f"\nhealthy receiver: event-to-request p50 {statistics.median(healthy_latency) * 1000:.0f} ms,"
            f" max {max(healthy_latency) * 1000:.0f} ms;"
            f" hanging receiver: p50 {statistics.median(hanging_latency) * 1000:.0f} ms,"
            f" max {max(hanging_latency) * 1000:.0f} ms (2 at a time, {settings.webhook_timeout} s timeout)"
        )
        assert max(healthy_latency) < 1.0, healthy_latency
        # The worker's own log: never more than the cap of attempts open at once.
        edges = sorted(
            [(r["attempted_at"].timestamp(), 1) for r in rows]
            + [(r["attempted_at"].timestamp() + r["duration_ms"] / 1000, -1) for r in rows],
            key=lambda e: (e[0], e[1]),
        )
        open_now = most = 0
        for _, step in edges:
            open_now += step
            most = max(most, open_now)
        assert most == settings.webhook_max_in_flight, most
        assert max(hanging_latency) > 3 * settings.webhook_timeout  # it really was held back
        assert all(r["duration_ms"] >= 1400 for r in rows)
        await wait_status(conn, ok_sub["id"], "succeeded", EVENTS)
    finally:
        await conn.close()
        await healthy.stop()
        await hanging.stop()

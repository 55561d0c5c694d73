"""A bounded load run of fan-out and delivery in one process (the worker, the receivers and the
publisher share it): deliveries per second and event-to-request latency, printed."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from services.webhook_delivery.app import create_app
from shared.config import Settings
from tests.conftest import make_settings
from tests.delivery_support import Publisher, connect, insert_subscription, wait_indexed, wait_status
from tests.receiver import start_receiver

pytestmark = pytest.mark.timeout(120)
EVENTS = 300
SUBSCRIPTIONS = 3


@pytest.fixture
def settings(database_url: str, amqp_prefix: str, signing_pem: str) -> Settings:
    return make_settings(
        database_url,
        amqp_prefix,
        signing_pem,
        webhook_allow_private=True,
        webhook_sweep_seconds=1.0,
        webhook_max_in_flight=32,
        db_pool_size=10,
    )


@pytest.fixture
async def engine(aiohttp_server: Any, settings: Settings) -> AsyncIterator[web.Application]:
    server = await aiohttp_server(create_app(settings))
    yield server.app


async def test_delivery_rate_and_latency(engine: web.Application, settings: Settings) -> None:
    receivers = [await start_receiver() for _ in range(SUBSCRIPTIONS)]
    conn = await connect(settings)
    try:
        subs = [await insert_subscription(conn, r.url, ["location.created"]) for r in receivers]
        await wait_indexed(engine, *subs)
        sent_at: dict[str, float] = {}
        async with Publisher(settings) as pub:
            started = time.monotonic()
            for batch in range(0, EVENTS, 50):

                async def one(i: int) -> None:
                    stamp = time.monotonic()
                    event = await pub.event("location.created", name=f"L{i}")
                    sent_at[event["id"]] = stamp

                await asyncio.gather(*(one(i) for i in range(batch, min(batch + 50, EVENTS))))
            published = time.monotonic() - started
            for receiver in receivers:
                await receiver.wait_for(EVENTS, timeout=90)
        elapsed = max(r.requests[-1].at for r in receivers) - started
        latency = sorted(r.at - sent_at[r.webhook_id] for rc in receivers for r in rc.requests)
        total = EVENTS * SUBSCRIPTIONS
        p50 = statistics.median(latency) * 1000
        p99 = latency[int(len(latency) * 0.99) - 1] * 1000
        print(
            f"\n{total} deliveries ({EVENTS} events x {SUBSCRIPTIONS} subscriptions) in {elapsed:.2f} s:"
            f" {total / elapsed:.0f} deliveries/s; events published in {published:.2f} s;"
            f" event-to-request latency p50 {p50:.0f} ms, p99 {p99:.0f} ms"
        )
        for sub in subs:
            await wait_status(conn, sub["id"], "succeeded", EVENTS, timeout=30)
        assert all(len(set(r.ids())) == EVENTS for r in receivers)
        assert total / elapsed > 50  # far below what it does; catches a serialized worker
    finally:
        await conn.close()
        for receiver in receivers:
            await receiver.stop()

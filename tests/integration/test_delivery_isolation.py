"""One hanging receiver must not delay the others: the per-subscription cap keeps it from
taking the worker's slots (here only 8), so a healthy receiver is served while it hangs."""

from __future__ import annotations

import dataclasses

import asyncpg
import pytest
from aiohttp import web

from shared.config import Settings
from tests.delivery_support import insert_subscription, wait_indexed, wait_status
from tests.factories import published
from tests.receiver import Answer, start_receiver

pytestmark = pytest.mark.timeout(90)
EVENTS = 12


@pytest.fixture
def settings(delivery_settings: Settings) -> Settings:
    return dataclasses.replace(
        delivery_settings,
        webhook_retry_schedule=("30",),
        # Longer than the test: a hanging attempt holds its slot throughout, so whatever the
        # healthy receiver got, it got without waiting for one of them to end.
        webhook_timeout=300,
        webhook_concurrency=8,  # fewer slots than the hanging receiver's deliveries
        webhook_max_in_flight=2,
    )


async def test_hanging_receiver_does_not_delay_a_healthy_one(
    engine: web.Application, settings: Settings, conn: asyncpg.Connection
) -> None:
    healthy = await start_receiver()
    hanging = await start_receiver(default=Answer(200, delay=600))
    try:
        ok_sub = await insert_subscription(conn, healthy.url, ["location.created"])
        stuck_sub = await insert_subscription(conn, hanging.url, ["location.created"])
        await wait_indexed(engine, ok_sub, stuck_sub)
        sent = [e["id"] for e in await published(settings, "location.created", EVENTS)]
        await healthy.wait_for(EVENTS)
        await hanging.wait_for(settings.webhook_max_in_flight)
        # All of the healthy one's while the first two hanging attempts still hang: the other
        # ten wait for the cap, not in the worker's slots (without the cap they would take all
        # eight, and the healthy deliveries would wait out a 300 s timeout).
        assert len(hanging.requests) == hanging.in_flight == hanging.max_in_flight == 2
        assert sorted(healthy.ids()) == sorted(sent)
        await wait_status(conn, ok_sub["id"], "succeeded", EVENTS)
    finally:
        await healthy.stop()
        await hanging.stop()

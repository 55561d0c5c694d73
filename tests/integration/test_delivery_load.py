"""A burst of events fanned out and delivered in one process (the worker, the receivers and the
publisher share it): every delivery arrives, once per subscription, and is recorded. How fast
is `make bench`'s business (its worker figure), not this test's."""

from __future__ import annotations

import asyncio
import dataclasses

import asyncpg
import pytest
from aiohttp import web

from shared.config import Settings
from tests.delivery_support import Publisher, insert_subscription, wait_indexed, wait_status
from tests.receiver import start_receiver

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]
EVENTS = 300
SUBSCRIPTIONS = 3


@pytest.fixture
def settings(delivery_settings: Settings) -> Settings:
    return dataclasses.replace(
        delivery_settings, webhook_sweep_seconds=1.0, webhook_max_in_flight=32, db_pool_size=10
    )


async def test_a_burst_of_events_reaches_every_subscription_once(
    engine: web.Application, settings: Settings, conn: asyncpg.Connection
) -> None:
    receivers = [await start_receiver() for _ in range(SUBSCRIPTIONS)]
    try:
        subs = [await insert_subscription(conn, r.url, ["location.created"]) for r in receivers]
        await wait_indexed(engine, *subs)
        sent: list[str] = []
        async with Publisher(settings) as pub:
            for batch in range(0, EVENTS, 50):

                async def one(i: int) -> None:
                    sent.append((await pub.event("location.created", name=f"L{i}"))["id"])

                await asyncio.gather(*(one(i) for i in range(batch, min(batch + 50, EVENTS))))
            for receiver in receivers:
                await receiver.wait_for(EVENTS, timeout=120)
        for sub in subs:
            await wait_status(conn, sub["id"], "succeeded", EVENTS, timeout=120)
        for receiver in receivers:
            assert sorted(set(receiver.ids())) == sorted(sent)
    finally:
        for receiver in receivers:
            await receiver.stop()

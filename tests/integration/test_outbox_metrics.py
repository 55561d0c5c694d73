"""The outbox's metrics (backlog, lag, published by topic) and its drain at shutdown, against
the real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import asyncio
import uuid

import aio_pika
from prometheus_client import REGISTRY

from services.resource.app import SCHEMA
from shared.amqp import Broker
from shared.db import Database
from shared.events import make_event
from shared.outbox import OutboxRelay, enqueue
from tests.conftest import AMQP_URL

Outbox = tuple[Database, Broker, str, aio_pika.abc.AbstractQueue]


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def _enqueue(db: Database, topic: str, count: int) -> list[str]:
    events = [make_event(topic, {"n": i}, "actor-1") for i in range(count)]
    async with db.transaction() as conn:
        for event in events:
            await enqueue(conn, SCHEMA, event)
    return [e["id"] for e in events]


async def test_backlog_lag_and_published_count_follow_the_table(outbox: Outbox) -> None:
    db, broker, exchange, _queue = outbox
    relay = OutboxRelay(db, broker, exchange, batch=500)
    await relay.observe()
    assert _sample("herald_outbox_backlog", schema=SCHEMA) == 0
    assert _sample("herald_outbox_lag_seconds", schema=SCHEMA) == 0

    created_before = _sample("herald_outbox_published_total", schema=SCHEMA, topic="location.created")
    deleted_before = _sample("herald_outbox_published_total", schema=SCHEMA, topic="location.deleted")
    oldest, *_ = await _enqueue(db, "location.created", 7)
    await _enqueue(db, "location.deleted", 3)
    async with db.connection() as conn:  # the oldest row has waited an hour (not: sleep an hour)
        await conn.execute(
            "UPDATE outbox SET created_at = now() - interval '1 hour' WHERE id = $1", uuid.UUID(oldest)
        )
    await relay.observe()
    assert _sample("herald_outbox_backlog", schema=SCHEMA) == 10
    assert 3600 <= _sample("herald_outbox_lag_seconds", schema=SCHEMA) < 7200  # its age, not another's

    assert await relay.relay_once() == 10
    await relay.observe()
    assert _sample("herald_outbox_backlog", schema=SCHEMA) == 0
    assert _sample("herald_outbox_lag_seconds", schema=SCHEMA) == 0
    created = _sample("herald_outbox_published_total", schema=SCHEMA, topic="location.created")
    deleted = _sample("herald_outbox_published_total", schema=SCHEMA, topic="location.deleted")
    assert (created - created_before, deleted - deleted_before) == (7, 3)


async def test_metrics_are_on_the_services_metrics_page(outbox: Outbox) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from shared.config import Settings
    from shared.service import base_app

    db, broker, exchange, _queue = outbox
    await _enqueue(db, "location.updated", 2)
    await OutboxRelay(db, broker, exchange).observe()
    app = base_app(Settings(), "resource")
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/metrics")
        text = await resp.text()
    assert f'herald_outbox_backlog{{schema="{SCHEMA}"}} 2.0' in text
    assert "herald_outbox_lag_seconds" in text
    assert "herald_outbox_published_total" in text


async def test_close_drains_what_the_cancelled_relay_left(outbox: Outbox) -> None:
    """A relay whose task is cancelled (SIGTERM) still publishes, in close(), the events of
    writes committed before it stopped."""
    db, broker, exchange, queue = outbox
    relay = OutboxRelay(db, broker, exchange, batch=20, poll_seconds=30)
    task = asyncio.create_task(relay.run())
    await asyncio.sleep(0.2)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    ids = await _enqueue(db, "location.created", 45)  # after the relay stopped listening
    await relay.close()
    async with db.connection() as conn:
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
    received: list[str] = []
    async with asyncio.timeout(30):
        async with queue.iterator() as it:
            async for message in it:
                await message.ack()
                received.append(str(message.message_id))
                if len(received) == len(ids):
                    break
    assert received == ids
    assert _sample("herald_outbox_backlog", schema=SCHEMA) == 0


async def test_drain_gives_up_in_time_when_the_broker_is_gone(outbox: Outbox) -> None:
    db, _broker, exchange, _queue = outbox
    await _enqueue(db, "location.created", 3)
    gone = Broker(AMQP_URL, prefix=_broker.prefix)
    await gone.connect()
    await gone.close()
    relay = OutboxRelay(db, gone, exchange)
    async with asyncio.timeout(30):  # bounds a hang only
        assert await relay.drain(seconds=2) == 0
    async with db.connection() as conn:
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 3


async def test_a_running_relay_reports_the_backlog_while_it_cannot_publish(outbox: Outbox) -> None:
    """What an operator's alert sees when RabbitMQ is gone: the backlog and the lag grow."""
    db, broker, exchange, _queue = outbox
    gone = Broker(AMQP_URL, prefix=broker.prefix)
    await gone.connect()
    await gone.close()
    relay = OutboxRelay(db, gone, exchange, poll_seconds=0.2)
    await _enqueue(db, "location.created", 4)
    task = asyncio.create_task(relay.run())
    try:
        async with asyncio.timeout(30):
            # A gauge has no event to wait on: poll it.
            while _sample("herald_outbox_lag_seconds", schema=SCHEMA) < 1.0:  # noqa: ASYNC110
                await asyncio.sleep(0.2)
        assert _sample("herald_outbox_backlog", schema=SCHEMA) == 4
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

"""A fan-out that waits for room (its worker holds as many leased deliveries as it may) must go
on when the worker stops and hands those back: not wait forever with its event unacked."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator

import aio_pika
import orjson
import pytest
from aio_pika.abc import AbstractIncomingMessage

from services.webhook_delivery.app import SCHEMA
from services.webhook_delivery.engine.fanout import Fanout
from services.webhook_delivery.engine.index import IndexedSubscription, SubscriptionIndex
from services.webhook_delivery.engine.worker import Worker
from shared.amqp import Broker
from shared.config import Settings
from shared.db import Database
from shared.events import make_event
from tests.delivery_support import connect, deliveries_of, insert_subscription, own_lanes, wait_until
from tests.receiver import Answer, Receiver, start_receiver

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def broker(settings: Settings) -> AsyncIterator[Broker]:
    async with own_lanes(settings) as broker:
        yield broker


@pytest.fixture
async def hanging() -> AsyncIterator[Receiver]:
    receiver = await start_receiver(default=Answer(200, delay=30))
    yield receiver
    await receiver.stop()


async def _messages(broker: Broker, events: list[dict[str, object]]) -> list[AbstractIncomingMessage]:
    """The events as the fan-out gets them: messages taken off a queue, not yet acked."""
    channel = await broker.channel()
    queue = await channel.declare_queue("", exclusive=True)
    for event in events:
        await channel.default_exchange.publish(aio_pika.Message(orjson.dumps(event)), routing_key=queue.name)
    return [await queue.get(timeout=5) for _ in events]


async def test_a_fanout_waiting_for_room_goes_on_when_the_worker_stops(
    settings: Settings, broker: Broker, hanging: Receiver
) -> None:
    changed = dataclasses.replace(
        settings, webhook_allow_private=True, webhook_concurrency=2, webhook_timeout=20.0
    )
    conn = await connect(settings)
    db = await Database.connect(settings.database_url, SCHEMA)
    worker: Worker | None = None
    try:
        sub = await insert_subscription(conn, hanging.url, ["location.created"])
        # An index of this subscription only (the session's database holds other tests' too).
        index = SubscriptionIndex()
        index.put(IndexedSubscription.from_row(sub))
        worker = Worker(changed, db, broker, index)
        await worker.start()
        fanout = Fanout(db, broker, index, worker)
        events = [
            make_event("location.created", {"id": str(uuid.uuid4()), "name": f"E{i}"}, str(uuid.uuid4()))
            for i in range(worker.room + 1)
        ]
        messages = await _messages(broker, events)
        # Each of these is stored leased to the worker, which holds them (the receiver hangs).
        for event, message in zip(events[:-1], messages[:-1], strict=True):
            await fanout.handle(event, message)
        assert len(worker.leased) == worker.room
        # One more event: its fan-out waits for room.
        waiting = asyncio.create_task(fanout.handle(events[-1], messages[-1]))
        await wait_until(lambda: not worker._roomy.is_set() or waiting.done(), what="the fan-out to wait")
        assert not waiting.done()

        await worker.stop(grace=0.1)
        await asyncio.wait_for(waiting, 20)  # went on: before, it waited for good
        assert worker.leased == {}
        stored = await deliveries_of(conn, sub["id"])
        assert len(stored) == len(events)
        # Nothing was attempted or is held: every delivery is due now for any worker.
        assert all(
            d["status"] == "pending" and d["attempts"] == 0 and d["lease_until"] is None for d in stored
        )
    finally:
        if worker is not None:
            await worker.stop(grace=0)
        await db.close()
        await conn.close()

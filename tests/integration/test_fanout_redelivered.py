"""Found by the fault suite (once broker-side cuts really cut): the connection dies after the
fan-out stored an event's deliveries but before their lane messages went out, so the broker
hands the event over again. The redelivered message must put the still-due deliveries on their
lanes, not find the event stored and do nothing (which left them to the sweeper's 30 s floor
for lost messages)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import aio_pika
import orjson
import pytest

from services.webhook_delivery import lanes
from services.webhook_delivery.app import SCHEMA
from services.webhook_delivery.engine.fanout import Fanout
from services.webhook_delivery.engine.index import IndexRefresher, SubscriptionIndex
from services.webhook_delivery.engine.worker import Worker
from services.webhook_delivery.store.delivery_repo import PENDING, DeliveryRepo
from shared.amqp import Broker
from shared.config import Settings
from shared.db import Database
from shared.events import make_event
from tests.conftest import delete_amqp_names
from tests.delivery_support import connect, insert_subscription

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def broker(settings: Settings) -> AsyncIterator[Broker]:
    broker = Broker(settings.amqp_url, prefix=f"{settings.queue_prefix}.webhook_delivery")
    await broker.connect()
    yield broker
    await broker.close()
    await delete_amqp_names(settings.queue_prefix)


async def test_a_redelivered_event_puts_its_unsent_deliveries_on_the_lanes(
    settings: Settings, broker: Broker
) -> None:
    conn = await connect(settings)
    db = await Database.connect(settings.database_url, SCHEMA)
    refresher = IndexRefresher(db, SubscriptionIndex())
    try:
        sub = await insert_subscription(conn, "http://127.0.0.1:9/hook", ["location.created"])
        await refresher.start()
        channel = await broker.channel()
        lane = await lanes.declare_lane(broker, channel, "first")
        # The lane's name is the session's: what earlier tests left on it is not this test's.
        await lane.purge()
        event = make_event("location.created", {"id": str(uuid.uuid4()), "name": "Cut"}, str(uuid.uuid4()))
        body = orjson.dumps(event)
        # The first handling stored the delivery, then the connection died: no lane message.
        delivery_id = uuid.uuid4()
        async with db.connection() as c:
            assert await DeliveryRepo(c).fan_out(
                uuid.UUID(event["id"]), event["type"], body, [(delivery_id, sub["id"], PENDING)]
            )
        # The broker hands the same message over again, marked redelivered.
        queue = await channel.declare_queue("", exclusive=True)
        await channel.default_exchange.publish(aio_pika.Message(body), routing_key=queue.name)
        first = await queue.get(timeout=30)
        await first.nack(requeue=True)
        again = await queue.get(timeout=30)
        assert again.redelivered

        worker = Worker(settings, db, broker)  # not started: the fan-out only asks it for room
        try:
            await Fanout(db, broker, refresher.index, worker).handle(event, again)
        finally:
            await worker.sender.close()
        sent = await lane.get(timeout=30, fail=False)
        assert sent is not None, "the redelivered event put nothing on the lane"
        assert orjson.loads(sent.body) == {"delivery": str(delivery_id), "subscription": str(sub["id"])}
        await sent.ack()
        # Stored once: the delivery was not duplicated in PostgreSQL.
        assert (
            await conn.fetchval("SELECT count(*) FROM deliveries WHERE event_id = $1", uuid.UUID(event["id"]))
            == 1
        )
    finally:
        await refresher.close()
        await db.close()
        await conn.close()

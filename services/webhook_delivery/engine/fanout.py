"""Fan-out: each domain event is stored (kept HERALD_EVENT_RETENTION, for replay) and becomes
one delivery per matching subscription whose owner may read it and whose filter it passes (a
filtered-out event leaves no delivery, not even a skipped one), written in one statement with
the event's bytes (once: a redelivered message finds the event stored). First attempts this
process can take on are stored leased to its worker and sent right away; the rest go on the
first-attempt lane (any worker's)."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

from services.webhook_delivery import lanes
from services.webhook_delivery.engine.index import SubscriptionIndex
from services.webhook_delivery.engine.outage import until_available
from services.webhook_delivery.engine.worker import Worker
from services.webhook_delivery.metrics import FANOUT
from services.webhook_delivery.store.delivery_repo import PENDING, SKIPPED, DeliveryRepo, FannedOut
from shared.amqp import Broker, PoisonMessage
from shared.catalog import TOPICS
from shared.db import Database
from shared.events import WEBHOOK_PING

log = logging.getLogger("herald.webhook.fanout")


class Fanout:
    def __init__(self, db: Database, broker: Broker, index: SubscriptionIndex, worker: Worker) -> None:
        self.db = db
        self.broker = broker
        self.index = index
        self.worker = worker

    async def handle(self, event: dict[str, Any], message: AbstractIncomingMessage) -> None:
        try:
            event_id = uuid.UUID(str(event.get("id")))
        except ValueError:
            raise PoisonMessage("the event has no valid id") from None
        topic = event.get("type")
        if not isinstance(topic, str) or topic not in TOPICS or topic == WEBHOOK_PING:
            return  # not a topic anyone can subscribe to (pings are made per subscription)
        data = event.get("data")
        data = data if isinstance(data, dict) else {}
        rows = [
            (uuid.uuid4(), sub.id, PENDING if sub.active else SKIPPED)
            for sub in self.index.match(topic)
            if sub.may_read(topic, data) and sub.passes_filter(event)
        ]
        # Stored even when nobody is to be told now: replay may send it later.
        body = bytes(message.body)
        worker = self.worker
        if rows:
            await worker.wait_for_room()  # unacked meanwhile: the broker's prefetch stops the flow
        leased = {d for d, s, status in rows if status == PENDING and worker.wants(s)}
        leased_at = time.monotonic()  # before the statement: the lease surely outlasts this

        async def store() -> FannedOut | None:
            async with self.db.connection() as conn:
                return await DeliveryRepo(conn).fan_out(
                    event_id, topic, body, rows, leased=leased, lease_seconds=worker.lease_seconds
                )

        stored = await until_available(store, f"fan-out of {event_id}")
        if stored is None:
            # Fanned out already. A redelivered message may mean the connection died between
            # the store and the lane publishes: send what is still waiting again (a second
            # message for a delivery is harmless: the lease decides who sends it).
            if message.redelivered:
                async with self.db.connection() as conn:
                    await lanes.publish(self.broker, await DeliveryRepo(conn).unsent_of(event_id))
            return
        FANOUT.labels(PENDING).inc(len(stored.leased) + len(stored.to_lane))
        FANOUT.labels(SKIPPED).inc(stored.skipped)
        for claimed in stored.leased:
            worker.submit(claimed, leased_at)
        await lanes.publish(self.broker, stored.to_lane)

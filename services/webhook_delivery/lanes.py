"""The two delivery lanes on RabbitMQ: first attempts and retries, each its own durable quorum
queue, so a backlog of retries never delays a first attempt. A lane message only carries a
delivery id (the fast path); PostgreSQL's `next_attempt_at` stays the truth."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable

import orjson
from aio_pika.abc import AbstractChannel, AbstractQueue

from shared.amqp import Broker

log = logging.getLogger("herald.webhook.lanes")

LANES = ("first", "retry")
LaneItem = tuple[uuid.UUID, uuid.UUID, str]  # delivery id, subscription id, lane


def exchange_name(broker: Broker) -> str:
    return f"{broker.prefix}.lanes"


def queue_name(broker: Broker, lane: str) -> str:
    return f"{broker.prefix}.lane.{lane}"


async def declare_lane(broker: Broker, channel: AbstractChannel, lane: str) -> AbstractQueue:
    return await broker.work_queue(channel, queue_name(broker, lane), exchange_name(broker), (lane,))


def encode(delivery_id: uuid.UUID, sub_id: uuid.UUID) -> bytes:
    return orjson.dumps({"delivery": str(delivery_id), "subscription": str(sub_id)})


async def publish(broker: Broker, items: Iterable[LaneItem]) -> int:
    """Put each delivery on its lane; how many the broker confirmed. A failure only costs
    latency: the sweeper finds the delivery due in PostgreSQL and enqueues it again."""
    items = list(items)
    if not items:
        return 0
    results = await asyncio.gather(
        *(
            broker.publish(exchange_name(broker), lane, encode(d, s), message_id=str(d))
            for d, s, lane in items
        ),
        return_exceptions=True,
    )
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        log.warning("%d of %d lane messages were not confirmed: %s", len(failed), len(items), failed[0])
    return len(items) - len(failed)

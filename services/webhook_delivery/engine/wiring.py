"""The moving half of webhook delivery, as one cleanup context: the subscription index, the
fan-out and owner consumers, the delivery worker with its two lanes, the sweeper, the relay
of this service's outbox (operational events, to the domain exchange), and the pruner of events
past retention."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from services.webhook_delivery.engine.fanout import Fanout
from services.webhook_delivery.engine.index import IndexRefresher, SubscriptionIndex
from services.webhook_delivery.engine.owners import OWNER_TOPICS, OwnerEvents
from services.webhook_delivery.engine.pruner import Pruner
from services.webhook_delivery.engine.sweeper import Sweeper
from services.webhook_delivery.engine.worker import Worker
from shared.amqp import consume
from shared.appkeys import BROKER, DATABASE, SETTINGS
from shared.outbox import OutboxRelay

INDEX = web.AppKey("subscription_index", SubscriptionIndex)
WORKER = web.AppKey("delivery_worker", Worker)


def fanout_queue(prefix: str) -> str:
    return f"{prefix}.fanout"


def owners_queue(prefix: str) -> str:
    return f"{prefix}.owners"


async def engine_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, db, broker = app[SETTINGS], app[DATABASE], app[BROKER]
    index = SubscriptionIndex()
    refresher = IndexRefresher(db, index)
    await refresher.start()  # loaded before the first event is matched
    app[INDEX] = index
    worker = Worker(settings, db, broker, index)
    app[WORKER] = worker
    await worker.start()
    sweeper = Sweeper(settings, db, broker, worker.breakers, worker.lease_seconds)

    channel = await broker.channel(prefetch=100)
    fanout = Fanout(db, broker, index, worker)
    domain = await broker.work_queue(channel, fanout_queue(broker.prefix), settings.domain_exchange, ("#",))
    owners = await broker.work_queue(
        channel, owners_queue(broker.prefix), settings.auth_exchange, OWNER_TOPICS
    )
    consumers = [
        (domain, await consume(domain, fanout.handle)),
        (owners, await consume(owners, OwnerEvents(db).handle)),
    ]
    # Writes of the API process (disabled by hand) wake it by NOTIFY: only engines relay.
    relay = OutboxRelay(
        db,
        broker,
        settings.domain_exchange,
        poll_seconds=settings.outbox_poll_seconds,
        retention_seconds=settings.outbox_retention,
    )
    tasks: list[asyncio.Task[Any]] = [
        asyncio.create_task(refresher.run()),
        asyncio.create_task(sweeper.run()),
        asyncio.create_task(relay.run()),
        asyncio.create_task(Pruner(db, settings.event_retention).run()),
    ]
    yield
    for queue, tag in consumers:
        with contextlib.suppress(Exception):
            await queue.cancel(tag)
    await worker.stop(grace=min(settings.shutdown_timeout, settings.webhook_timeout))
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    with contextlib.suppress(Exception):
        await channel.close()
    await sweeper.close()
    await relay.close()
    await refresher.close()

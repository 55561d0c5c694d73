"""Fixtures of the integration tests on top of tests/conftest.py: for the webhook delivery
tests, their settings, the delivery service started in this process, a connection to its schema
and a receiver; for the outbox tests, a database, a broker and a queue. A module asks for them
by name (and overrides `settings` from `delivery_settings` with what its tests need)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import asyncpg
import pytest
from aiohttp import web

from services.resource.app import MIGRATIONS as RESOURCE_MIGRATIONS
from services.resource.app import SCHEMA as RESOURCE_SCHEMA
from services.webhook_delivery.app import create_app as webhook_app
from shared.amqp import Broker
from shared.config import Settings
from shared.db import Database, ensure_database
from shared.migrations import apply_migrations
from tests.conftest import AMQP_URL, make_settings
from tests.delivery_support import connect
from tests.receiver import Receiver, start_receiver

Outbox = tuple[Database, Broker, str, aio_pika.abc.AbstractQueue]

# What every delivery test wants: receivers on 127.0.0.1 allowed, lost deliveries swept soon,
# retries when they are due to the millisecond, and no breaker opening on a test's failures.
DELIVERY = {
    "webhook_allow_private": True,
    "webhook_sweep_seconds": 0.2,
    "webhook_retry_jitter": 0.0,
    "webhook_breaker_failures": 1000,
}


@pytest.fixture
def delivery_settings(database_url: str, amqp_prefix: str, signing_pem: str) -> Settings:
    """The session's settings with DELIVERY; a module's `settings` starts from these."""
    return make_settings(database_url, amqp_prefix, signing_pem, **DELIVERY)


@pytest.fixture
async def engine(aiohttp_server: Any, settings: Settings) -> AsyncIterator[web.Application]:
    """The webhook delivery service (its API, fan-out and worker) with the test's `settings`."""
    server = await aiohttp_server(webhook_app(settings))
    yield server.app


@pytest.fixture
async def conn(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """To the delivery schema of the test database, migrated."""
    connection = await connect(settings)
    yield connection
    await connection.close()


@pytest.fixture
async def outbox(fresh_database_url: str) -> AsyncIterator[Outbox]:
    """The resource service's schema in a database of its own, a broker, and a queue bound to
    everything on the broker's domain exchange: (database, broker, exchange name, queue)."""
    await ensure_database(fresh_database_url)
    await apply_migrations(fresh_database_url, RESOURCE_SCHEMA, RESOURCE_MIGRATIONS)
    db = await Database.connect(fresh_database_url, RESOURCE_SCHEMA, 4)
    broker = Broker(AMQP_URL, prefix=f"herald.test.{uuid.uuid4().hex[:8]}")
    await broker.connect()
    exchange = f"{broker.prefix}.domain"
    channel = await broker.channel()
    ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue("", exclusive=True)
    await queue.bind(ex, "#")
    yield db, broker, exchange, queue
    await channel.exchange_delete(exchange)
    await broker.close()
    await db.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook receiver on a free port that answers 200."""
    started = await start_receiver()
    yield started
    await started.stop()

"""Fixtures of the integration tests on top of tests/conftest.py, for the webhook delivery
tests above all: their settings, the delivery service started in this process, a connection to
its schema and a receiver. A module asks for them by name (and overrides `settings` from
`delivery_settings` with what its tests need)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from services.webhook_delivery.app import create_app as webhook_app
from shared.config import Settings
from tests.conftest import make_settings
from tests.delivery_support import connect
from tests.receiver import Receiver, start_receiver

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
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook receiver on a free port that answers 200."""
    started = await start_receiver()
    yield started
    await started.stop()

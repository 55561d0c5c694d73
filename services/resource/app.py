"""The resource service: events and locations (any declared type), their approval workflow,
and the outbox relay that publishes every change to the domain exchange."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from aiohttp import web

from services.resource.handlers import OUTBOX_RELAY, add_routes
from services.resource.openapi import fragment
from services.resource.repo import IdempotencyRepo
from services.resource.statistics import keep_statistics_fresh
from services.resource.types import TYPES, ResourceType
from shared.appkeys import BROKER, DATABASE, SETTINGS
from shared.config import Settings
from shared.http import json_response
from shared.outbox import LocalRelay, OutboxRelay
from shared.service import base_app, broker_ctx, database_ctx, verifier_ctx

log = logging.getLogger("herald.resource")
MIGRATIONS = Path(__file__).parent / "migrations"
SCHEMA = "resource"
OPENAPI_PATH = "/openapi.json"
STATISTICS_SECONDS = 30.0  # how often the service checks whether `resources` needs an ANALYZE


async def background_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    relay = OutboxRelay(
        app[DATABASE],
        app[BROKER],
        settings.domain_exchange,
        poll_seconds=settings.outbox_poll_seconds,
        retention_seconds=settings.outbox_retention,
    )

    async def prune_idempotency_keys() -> None:
        while True:
            await asyncio.sleep(600)
            try:
                async with app[DATABASE].connection() as conn:
                    await IdempotencyRepo(conn).prune(settings.idempotency_ttl)
            except Exception as exc:  # the next round tries again
                log.warning("could not prune idempotency keys: %s", exc)

    tasks = [
        asyncio.create_task(relay.run()),
        asyncio.create_task(prune_idempotency_keys()),
        asyncio.create_task(keep_statistics_fresh(app[DATABASE], STATISTICS_SECONDS)),
    ]
    app[OUTBOX_RELAY].relay = relay  # creates wake it in process instead of NOTIFYing
    yield
    app[OUTBOX_RELAY].relay = None
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    with contextlib.suppress(Exception):
        await relay.close()


def create_app(settings: Settings, types: Sequence[ResourceType] = TYPES) -> web.Application:
    """`types` defaults to the product's; tests declare more to show the engine is generic."""
    app = base_app(settings, "resource", public_paths=(OPENAPI_PATH,))
    app[OUTBOX_RELAY] = LocalRelay()
    app.cleanup_ctx.append(database_ctx(SCHEMA, MIGRATIONS))
    app.cleanup_ctx.append(broker_ctx)
    app.cleanup_ctx.append(verifier_ctx())
    app.cleanup_ctx.append(background_ctx)
    add_routes(app, types)
    document = fragment(types)

    async def openapi(request: web.Request) -> web.Response:
        return json_response(document)

    app.router.add_get(OPENAPI_PATH, openapi, allow_head=False)
    return app

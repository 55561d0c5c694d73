"""The auth service: users, their credentials, and the tokens made from them."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

from services.auth import throttle
from services.auth.appkeys import CLOCK, PASSWORDS, SIGNING_KEY, TRUSTED_PROXIES
from services.auth.bootstrap import ensure_first_admin
from services.auth.handlers import routes
from services.auth.openapi import build_fragment
from services.auth.passwords import Passwords
from services.auth.repo import UserRepo
from services.auth.tokens import load_signing_key, published_keys
from shared.appkeys import BROKER, DATABASE, SETTINGS
from shared.config import Settings, SettingsError
from shared.openapi import add_fragment_route
from shared.outbox import OutboxRelay
from shared.service import base_app, broker_ctx, database_ctx, verifier_ctx
from shared.verifier import Credentials, CvFetcher, JwksFetcher

log = logging.getLogger("herald.auth")
MIGRATIONS = Path(__file__).parent / "migrations"
SCHEMA = "auth"


async def keys_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[PASSWORDS] = Passwords(settings)
    async with app[DATABASE].connection() as conn:
        app[SIGNING_KEY] = await load_signing_key(conn, settings)
    await ensure_first_admin(app[DATABASE], app[PASSWORDS], settings)
    yield


def local_fetchers(app: web.Application) -> tuple[JwksFetcher, CvFetcher]:
    """Auth verifies its own tokens from its own tables: a credential change is seen at once."""

    async def fetch_jwks() -> dict[str, Any]:
        async with app[DATABASE].connection() as conn:
            return {"keys": await published_keys(conn, app[SETTINGS].token_ttl)}

    async def fetch_cv(user_id: str) -> Credentials | None:
        async with app[DATABASE].connection() as conn:
            found = await UserRepo(conn).credentials(user_id)
        return Credentials(*found) if found else None

    return fetch_jwks, fetch_cv


async def background_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    relay = OutboxRelay(app[DATABASE], app[BROKER], settings.auth_exchange)

    async def prune_throttle() -> None:
        while True:
            await asyncio.sleep(600)
            with contextlib.suppress(Exception):
                await throttle.prune(app)

    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(prune_throttle())]
    yield
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await relay.close()


def create_app(settings: Settings, clock: throttle.Clock = throttle.wall_clock) -> web.Application:
    if settings.production and not (settings.signing_key or settings.signing_key_file):
        # Only auth signs, so only auth needs the private key; generated keys are for development.
        raise SettingsError("production needs HERALD_SIGNING_KEY or HERALD_SIGNING_KEY_FILE")
    app = base_app(settings, "auth")
    app[CLOCK] = clock
    app[TRUSTED_PROXIES] = tuple(ipaddress.ip_network(n, strict=False) for n in settings.trusted_proxies)
    app.cleanup_ctx.append(database_ctx(SCHEMA, MIGRATIONS))
    app.cleanup_ctx.append(broker_ctx)
    app.cleanup_ctx.append(keys_ctx)
    app.cleanup_ctx.append(verifier_ctx(local_fetchers, cv_ttl=0))
    app.cleanup_ctx.append(background_ctx)
    app.add_routes(routes)
    add_fragment_route(app, build_fragment())
    return app

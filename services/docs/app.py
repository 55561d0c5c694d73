"""The docs service, behind the edge: the merged /v2/openapi.json, Swagger UI at /docs, and the
readiness of the whole suite (the edge's /readyz is this service's: ready when every process
behind the edge answers its own /readyz)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web

from services.docs import openapi, swagger
from shared.appkeys import READY_CHECKS, SETTINGS
from shared.authn import public
from shared.config import Settings
from shared.edge import upstreams
from shared.logging import request_id_var
from shared.problems import NotFound
from shared.service import base_app

SESSIONS = web.AppKey("upstream_sessions", dict[str, aiohttp.ClientSession])
READY_TIMEOUT = aiohttp.ClientTimeout(total=2)


def make_session(limit: int = 16) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, keepalive_timeout=30),
        cookie_jar=aiohttp.DummyCookieJar(),
    )


def process_urls(settings: Settings) -> dict[str, list[str]]:
    """Every process the edge sends to, by service (as the supervisor starts them)."""
    servers = upstreams(settings)
    servers.pop("docs")
    return {
        name: [f"http://[{h}]:{p}" if ":" in h else f"http://{h}:{p}" for h, p in addresses]
        for name, addresses in servers.items()
    }


def ready_check(app: web.Application, name: str, url: str) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        headers = {"X-Request-ID": request_id_var.get() or ""}
        async with app[SESSIONS][name].get(url + "/readyz", headers=headers, timeout=READY_TIMEOUT) as resp:
            if resp.status != 200:
                raise ConnectionError(f"answered {resp.status}")

    check.__name__ = f"{name} at {url}"
    return check


async def sessions_ctx(app: web.Application) -> AsyncIterator[None]:
    urls = process_urls(app[SETTINGS])
    app[SESSIONS] = {name: make_session() for name in urls}
    app[READY_CHECKS].extend(ready_check(app, name, url) for name, each in urls.items() for url in each)
    yield
    await asyncio.gather(*(s.close() for s in app[SESSIONS].values()))


@public
async def not_found(request: web.Request) -> web.Response:
    raise NotFound("no route matches this path")


def create_app(settings: Settings) -> web.Application:
    app = base_app(settings, "docs", public_paths={openapi.DOCUMENT_PATH, swagger.DOCS_PATH})
    app.cleanup_ctx.append(sessions_ctx)
    # The fragment of each service comes from its first process: they all run the same code.
    first = {name: urls[0] for name, urls in process_urls(settings).items()}
    openapi.add_routes(app, first, lambda: app[SESSIONS])
    swagger.add_routes(app)
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app

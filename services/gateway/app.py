"""The gateway: the one public door. Routes /v2/... to the services, answers CORS, stamps
request ids, checks tokens at the edge and limits request rates."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web

from services.gateway import docs, openapi, routes
from services.gateway.cors import cors_handlers
from services.gateway.proxy import forward, make_session
from services.gateway.ratelimit import TokenBuckets, add_rate_headers, ratelimit_middleware
from services.gateway.upstream import Upstream
from shared.appkeys import READY_CHECKS, SETTINGS
from shared.config import Settings
from shared.http import (
    client_address,
)
from shared.logging import request_id_var
from shared.service import base_app, broker_ctx, verifier_ctx

SESSIONS = web.AppKey("upstream_sessions", dict[str, aiohttp.ClientSession])
POOLS = web.AppKey("upstream_pools", dict[str, Upstream])
UPSTREAMS = web.AppKey("upstream_urls", dict[str, str])
TRUSTED = web.AppKey("trusted_proxies", tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...])


async def sessions_ctx(app: web.Application) -> AsyncIterator[None]:
    """One kept-alive connection pool per service for forwarding, and a client session per
    service for the gateway's own calls (readiness, documents)."""
    timeout = app[SETTINGS].upstream_timeout
    app[POOLS] = {
        name: Upstream(url, limit=512, connect_timeout=5, read_timeout=timeout, keepalive=60)
        for name, url in app[UPSTREAMS].items()
    }
    app[SESSIONS] = {name: make_session() for name in app[UPSTREAMS]}

    def ready_check(name: str, url: str) -> Callable[[], Awaitable[None]]:
        async def check() -> None:
            headers = {"X-Request-ID": request_id_var.get() or ""}
            timeout = aiohttp.ClientTimeout(total=2)
            async with app[SESSIONS][name].get(url + "/readyz", headers=headers, timeout=timeout) as resp:
                if resp.status != 200:
                    raise ConnectionError(f"answered {resp.status}")

        check.__name__ = name
        return check

    app[READY_CHECKS].extend(ready_check(n, u) for n, u in app[UPSTREAMS].items())
    yield
    await asyncio.gather(*(s.close() for s in app[SESSIONS].values()))
    await asyncio.gather(*(p.close() for p in app[POOLS].values()))


async def proxy(request: web.Request) -> web.StreamResponse:
    service = routes.service_for(request.path)
    app = request.app
    return await forward(
        request,
        app[POOLS][service],
        service,
        request_id=request_id_var.get() or "",
        client=client_address(request, app[TRUSTED]),
        max_body=app[SETTINGS].max_body_bytes,
    )


def create_app(settings: Settings) -> web.Application:
    trusted = tuple(ipaddress.ip_network(n, strict=False) for n in settings.trusted_proxies)
    login = (
        TokenBuckets(settings.requesttoken_rate_per_minute / 60, settings.requesttoken_rate_per_minute)
        if settings.requesttoken_rate_per_minute > 0
        else None
    )
    users = (
        TokenBuckets(settings.user_rate_per_second, settings.user_burst)
        if settings.user_rate_per_second > 0
        else None
    )
    cors, cors_prepare = cors_handlers(settings.cors_origins)
    app = base_app(
        settings,
        "gateway",
        public_paths=routes.PUBLIC_PATHS | {openapi.DOCUMENT_PATH, docs.DOCS_PATH},
        outer_middlewares=[cors],
        # With both limits off (HERALD_USER_RATE=0, HERALD_REQUESTTOKEN_RATE=0) the layer has
        # nothing to do: leave it out.
        inner_middlewares=[ratelimit_middleware(login, users, trusted)]
        if login is not None or users is not None
        else [],
    )
    app[UPSTREAMS] = routes.upstream_urls(settings)
    app[TRUSTED] = trusted
    app.on_response_prepare.append(cors_prepare)
    if login is not None or users is not None:
        app.on_response_prepare.append(add_rate_headers)
    app.cleanup_ctx.append(broker_ctx)
    app.cleanup_ctx.append(verifier_ctx())
    app.cleanup_ctx.append(sessions_ctx)
    openapi.add_routes(app, app[UPSTREAMS], lambda: app[SESSIONS])
    docs.add_routes(app)
    app.router.add_route("*", "/v2/{tail:.*}", proxy)
    return app

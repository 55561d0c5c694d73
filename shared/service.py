"""The scaffolding every Herald service shares: the app with its middlewares, and the cleanup
contexts for PostgreSQL, RabbitMQ and the token verifier (create, yield, close)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import signal
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from shared.amqp import Broker, consume
from shared.appkeys import (
    BROKER,
    DATABASE,
    DRAINING,
    PUBLIC_PATHS,
    READY_CHECKS,
    SERVICE_NAME,
    SETTINGS,
    VERIFIER,
)
from shared.authn import problem_and_authentication_middleware
from shared.config import Settings
from shared.db import Database, ensure_database
from shared.events import USER_CREDENTIALS_CHANGED, USER_DELETED
from shared.logging import setup_logging
from shared.migrations import apply_migrations
from shared.verifier import CvFetcher, JwksFetcher, TokenVerifier, http_fetchers
from shared.web.health import OPERATIONS_PATHS, add_operations_routes
from shared.web.middleware import request_middleware

log = logging.getLogger("herald.service")

CleanupCtx = Callable[[web.Application], Any]
JWKS_REFRESH_SECONDS = 300  # auth serves the JWKS with max-age=300
# After SIGTERM closed the listener, kept-alive connections may carry one more request, answered
# with `Connection: close`, for up to this long before idle ones are closed. A client (the
# edge) that reuses a connection just as the server closes it gets a reset it cannot safely
# retry for a POST; letting each connection end after an answer closes that window.
LINGER_SECONDS = 2.0
# The setting that picks each service's port (named when the port is taken).
PORT_SETTINGS = {
    "auth": "HERALD_AUTH_PORT",
    "resource": "HERALD_RESOURCE_PORT",
    "webhook_delivery": "HERALD_WEBHOOK_PORT",
    "docs": "HERALD_DOCS_PORT",
}
GC_THRESHOLD = 10_000  # allocations between young-generation collections (Python's default: 700)


def base_app(
    settings: Settings,
    name: str,
    *,
    public_paths: Iterable[str] = (),
    outer_middlewares: Sequence[Any] = (),
    inner_middlewares: Sequence[Any] = (),
) -> web.Application:
    """The app every service starts from: request ids, request logs and metrics, problem+json
    errors, the token check, and /healthz, /readyz and /metrics. `outer_middlewares` run before
    errors become problems (their answers get no problem body), `inner_middlewares` after the
    token check (they see the caller)."""
    app = web.Application(
        middlewares=[
            request_middleware,  # request ids, logs and metrics
            *outer_middlewares,
            problem_and_authentication_middleware,
            *inner_middlewares,
        ],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[SERVICE_NAME] = name
    app[READY_CHECKS] = []
    app[PUBLIC_PATHS] = frozenset(public_paths) | OPERATIONS_PATHS
    app[DRAINING] = asyncio.Event()
    app.on_response_prepare.append(_close_when_draining)
    add_operations_routes(app)
    return app


async def _close_when_draining(request: web.Request, response: web.StreamResponse) -> None:
    if request.app[DRAINING].is_set():
        response.force_close()  # the server closes after this answer...
        response.headers["Connection"] = "close"  # ...and the client knows (headers are not yet sent)


async def prepare_database(settings: Settings, schema: str, migrations: Path) -> list[str]:
    await ensure_database(settings.database_url)
    return await apply_migrations(settings.database_url, schema, migrations)


def database_ctx(schema: str, migrations: Path) -> CleanupCtx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        await prepare_database(settings, schema, migrations)
        db = await Database.connect(settings.database_url, schema, settings.db_pool_size)
        app[DATABASE] = db

        async def postgresql() -> None:
            await asyncio.wait_for(db.ping(), 2)

        app[READY_CHECKS].append(postgresql)
        yield
        await db.close()

    return ctx


async def broker_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    broker = Broker(settings.amqp_url, prefix=f"{settings.queue_prefix}.{app[SERVICE_NAME]}")
    await broker.connect()
    app[BROKER] = broker

    async def rabbitmq() -> None:
        await broker.ping()

    app[READY_CHECKS].append(rabbitmq)
    yield
    await broker.close()


def verifier_ctx(
    fetchers: Callable[[web.Application], tuple[JwksFetcher, CvFetcher]] | None = None,
    *,
    cv_ttl: float | None = None,
) -> CleanupCtx:
    """The token verifier, kept fresh by auth's events on a queue private to this process.
    Needs `broker_ctx` before it."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        # Auth passes its own table-reading fetchers; every other process asks auth over HTTP.
        session = None
        if fetchers is not None:
            fetch_jwks, fetch_cv = fetchers(app)
        else:
            session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
            fetch_jwks, fetch_cv = http_fetchers(session, settings.auth_url, settings.internal_token)
        verifier = TokenVerifier(
            issuer=settings.token_issuer,
            audience=settings.token_audience,
            fetch_jwks=fetch_jwks,
            fetch_cv=fetch_cv,
            cv_ttl=settings.cv_cache_seconds if cv_ttl is None else cv_ttl,
        )
        app[VERIFIER] = verifier
        broker = app[BROKER]
        broker.on_reconnect(verifier.forget_all_versions)
        channel = await broker.channel(prefetch=50)
        queue = await broker.broadcast_queue(
            channel, settings.auth_exchange, (USER_CREDENTIALS_CHANGED, USER_DELETED)
        )

        async def on_auth_event(event: dict[str, Any], _message: Any) -> None:
            data = event.get("data") or {}
            user_id = data.get("id")
            if not isinstance(user_id, str):
                return
            if event.get("type") == USER_DELETED:
                verifier.user_deleted(user_id)
            else:
                cv, active = data.get("cv"), data.get("active", True)
                verifier.credentials_changed(
                    user_id, cv if isinstance(cv, int) else None, active is not False
                )

        await consume(queue, on_auth_event)

        async def refresh_keys() -> None:
            # A key removed from the JWKS (a compromised one) stops verifying within minutes,
            # even for tokens this process has already cached.
            while True:
                await asyncio.sleep(JWKS_REFRESH_SECONDS)
                try:
                    await verifier.refresh_keys()
                except Exception as exc:  # keep refreshing whatever one attempt met
                    log.warning("could not refresh the JWKS: %s", exc)

        refresher = asyncio.create_task(refresh_keys())
        yield
        refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await refresher
        with contextlib.suppress(Exception):
            await channel.close()
        if session is not None:
            await session.close()

    return ctx


def main(
    create_app: Callable[[Settings], web.Application],
    name: str,
    port_of: Callable[[Settings], int],
    schema: str | None,
    migrations: Path | None,
    argv: list[str],
) -> None:
    """Entry point of `python -m services.<name> [serve|migrate]`.

    serve (the default) runs until SIGTERM or SIGINT: stop accepting, let requests in flight
    finish (up to HERALD_SHUTDOWN_TIMEOUT), then run the cleanup contexts in reverse order."""
    command = argv[0] if argv else "serve"
    if command not in ("serve", "migrate"):
        raise SystemExit(f"usage: python -m services.{name} [serve|migrate]")
    settings = Settings.from_env()
    setup_logging(name, settings.log_level)
    if command == "migrate":
        if schema is None or migrations is None:
            log.info("%s has no database; nothing to migrate", name)
            return
        applied = asyncio.run(prepare_database(settings, schema, migrations))
        log.info("migrated schema %s", schema, extra={"applied": applied})
        return
    loop_factory = None
    with contextlib.suppress(ImportError):
        import uvloop  # faster asyncpg, aio-pika and aiohttp client

        loop_factory = uvloop.new_event_loop
    app = create_app(settings)
    port = port_of(settings)
    log.info("starting %s on %s:%d", name, settings.host, port)
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(serve(app, settings.host, port, settings.shutdown_timeout))
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        # One line that says what to change, not a traceback.
        log.error(
            "%s cannot listen on %s:%d: the port is already in use (%s)",
            name,
            settings.host,
            port,
            PORT_SETTINGS.get(name, "its port setting"),
        )
        raise SystemExit(1) from None


async def serve(app: web.Application, host: str, port: int, shutdown_timeout: float) -> None:
    """Serve until SIGTERM or SIGINT, then drain: close the listener, let kept-alive connections
    end after their next answer (LINGER_SECONDS), let requests in flight finish (up to
    `shutdown_timeout`), and run the cleanup contexts in reverse order."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    # What start-up made lives as long as the process: out of the collector's sight. Requests
    # free nearly all they make by reference counting; fewer young-generation passes.
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        log.info("stopping: no new connections; draining those open")
        await site.stop()
        app[DRAINING].set()
        deadline = loop.time() + min(LINGER_SECONDS, shutdown_timeout)
        # aiohttp has no event for "a connection closed": poll its list.
        while runner.server is not None and runner.server.connections and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    finally:
        await runner.cleanup()

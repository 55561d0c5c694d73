"""The operations routes every service serves: health, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared.appkeys import READY_CHECKS, SERVICE_NAME
from shared.problems import Problem
from shared.web.json_io import json_response


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok", "service": request.app[SERVICE_NAME]})


async def readyz(request: web.Request) -> web.Response:
    checks = request.app[READY_CHECKS]
    results = await asyncio.gather(*(check() for check in checks), return_exceptions=True)
    failures = {
        getattr(check, "__name__", "check"): f"{type(result).__name__}: {result}"[:200]
        for check, result in zip(checks, results, strict=True)
        if isinstance(result, BaseException)
    }
    if failures:
        raise Problem(503, "not ready: " + "; ".join(f"{k}: {v}" for k, v in failures.items()))
    return json_response({"status": "ready", "service": request.app[SERVICE_NAME]})


async def metrics(request: web.Request) -> web.Response:
    resp = web.Response(body=generate_latest())
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp


OPERATIONS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def add_operations_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)

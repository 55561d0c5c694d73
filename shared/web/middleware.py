"""The request middleware: request ids, one log line and two metrics per request."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from typing import Any

from aiohttp import web
from prometheus_client import Counter, Histogram

from shared.appkeys import SERVICE_NAME
from shared.logging import request_id_var
from shared.problems import client_went_away

log = logging.getLogger("herald.http")

REQUEST_ID_HEADER = "X-Request-ID"
CLIENT_CLOSED_REQUEST = 499  # nginx's status for a client that hung up before the answer
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

REQUESTS = Counter(
    "herald_http_requests_total", "HTTP requests answered", ["service", "method", "route", "status"]
)
LATENCY = Histogram(
    "herald_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def make_request_id(offered: str | None) -> str:
    """Keep a well-formed id from the caller; otherwise make one (a random UUID, version 4)."""
    if offered and _REQUEST_ID_RE.match(offered):
        return offered
    h = os.urandom(16).hex()  # what uuid.uuid4() does, without building a UUID object
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


# RFC 9562 variant bits (10xx) on the first hex digit of the fourth group.
_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}
# The metrics' children by label values: labels() takes a lock and builds a tuple each call.
_COUNTED: dict[tuple[str, str, str, int], Any] = {}
_TIMED: dict[tuple[str, str, str], Any] = {}


def _observe(service: str, method: str, route: str, status: int, elapsed: float) -> None:
    key = (service, method, route)
    timed = _TIMED.get(key)
    if timed is None:
        timed = _TIMED[key] = LATENCY.labels(service, method, route)
    timed.observe(elapsed)
    counted = _COUNTED.get((service, method, route, status))
    if counted is None:
        counted = _COUNTED[(service, method, route, status)] = REQUESTS.labels(
            service, method, route, str(status)
        )
    counted.inc()


def _log_level(status: int) -> int:
    """Answers below 400 are the bulk and cost more to log than to make: DEBUG. What needs a
    look is logged by default: 4xx (and 499) at INFO, 5xx at WARNING."""
    if status < 400:
        return logging.DEBUG
    return logging.INFO if status < 500 else logging.WARNING


@web.middleware
async def request_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """The request id (kept from the caller when well formed, made otherwise; in the logs, the
    answer and what the services are sent), then one log line and two metrics per request,
    labelled by route template, not raw path. A client that hung up before the answer counts
    as 499 (nginx's "client closed request"): an INFO line, no traceback, no 500."""
    rid = make_request_id(request.headers.get(REQUEST_ID_HEADER))
    token = request_id_var.set(rid)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers[REQUEST_ID_HEADER] = rid
        return response
    except web.HTTPException as exc:
        status = exc.status
        exc.headers[REQUEST_ID_HEADER] = rid
        raise
    except (ConnectionResetError, asyncio.CancelledError) as exc:
        if not client_went_away(request, exc):
            raise
        status = CLIENT_CLOSED_REQUEST
        if isinstance(exc, asyncio.CancelledError):
            raise  # the server cancels handlers of lost connections when told to: let it
        # Raised further, aiohttp would log it as an error; this answer is never sent.
        return web.Response(status=status)
    finally:
        elapsed = time.perf_counter() - started
        info = request.match_info.route.resource
        route = info.canonical if info is not None else "unmatched"
        _observe(request.app[SERVICE_NAME], request.method, route, status, elapsed)
        level = _log_level(status)
        if log.isEnabledFor(level):
            log.log(
                level,
                "%s %s %d",
                request.method,
                request.path,
                status,
                extra={"status": status, "duration_ms": round(elapsed * 1000, 2)},
            )
        request_id_var.reset(token)

"""HTTP helpers every service uses: request ids, JSON in and out, request logs and metrics,
health endpoints, client addresses, and keyset-cursor paging."""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import logging
import os
import re
import time
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web
from multidict import MultiDict
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from shared.appkeys import READY_CHECKS, SERVICE_NAME, SETTINGS
from shared.logging import request_id_var
from shared.problems import Problem, client_went_away
from shared.validation import parse_integer, parse_time

log = logging.getLogger("herald.http")

JSON_CONTENT_TYPE = "application/json"
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


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(data),
        status=status,
        headers=headers,
        content_type=JSON_CONTENT_TYPE,
        charset="utf-8",
    )


async def read_json(request: web.Request, content_types: Iterable[str] = (JSON_CONTENT_TYPE,)) -> Any:
    """The request body as JSON: 415 for another content type, 400 for bad JSON, 413 when big."""
    allowed = tuple(content_types)
    if request.content_type not in allowed:
        raise Problem(
            415,
            f"send the body as {' or '.join(allowed)}, not {request.content_type or 'nothing'}",
        )
    limit = request.app[SETTINGS].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise Problem(413, f"the body is larger than {limit} bytes")
    try:
        # Reads to the end, however the body arrives (in pieces, chunked); aiohttp stops past
        # client_max_size, which every Herald app sets to this same limit.
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise Problem(413, f"the body is larger than {limit} bytes") from None
    if not raw.strip():
        raise Problem(400, "the request body is empty; send a JSON document")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, f"the body is not valid JSON: {exc}") from None
    if b"\\u0000" in raw and _has_nul(body):
        # PostgreSQL text cannot hold U+0000: refuse it here, for every service, as bad input.
        raise Problem(400, "strings in the body must not contain the NUL character (\\u0000)")
    return body


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def client_address(
    request: web.Request, trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
) -> str:
    """The caller's address: the peer's, or the last hop X-Forwarded-For names when the peer is
    a trusted proxy (so a caller cannot pick its own address by sending the header)."""
    peer = request.remote or ""
    forwarded = request.headers.get("X-Forwarded-For")
    if not forwarded:
        return peer
    try:
        peer_ip = ipaddress.ip_address(peer)
    except ValueError:
        return peer
    if not any(peer_ip in net for net in trusted):
        return peer
    hops = [h.strip() for h in forwarded.split(",") if h.strip()]
    for hop in reversed(hops):
        try:
            ip = ipaddress.ip_address(hop)
        except ValueError:
            return peer
        if not any(ip in net for net in trusted):
            return hop
    return hops[0] if hops else peer


def etag(version: int) -> str:
    """The ETag of a resource is its version."""
    return f'"{version}"'


def etag_matches(header: str, version: int, *, weak: bool) -> bool:
    """`If-Match` compares strongly, `If-None-Match` weakly (RFC 9110 §13.1); `*` matches."""
    current = etag(version)
    for tag in (part.strip() for part in header.split(",")):
        if tag == "*" or tag == current or (weak and tag.removeprefix("W/") == current):
            return True
    return False


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise Problem(400, "cursor is not one this API made") from None
    if not isinstance(values, list):
        raise Problem(400, "cursor is not one this API made")
    return values


def decode_time_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """A cursor of `[time, id]` (a row's creation time at full precision, then its id)."""
    values = decode_cursor(cursor)
    moment = parse_time(values[0]) if values else None
    try:
        if moment is None or len(values) != 2:
            raise ValueError
        return moment, uuid.UUID(str(values[1]))
    except ValueError:
        raise Problem(400, "cursor is not one this API made") from None


def parse_limit(request: web.Request, default: int = 50, maximum: int = 500) -> int:
    raw = request.query.get("limit")
    if raw is None:
        return default
    value = parse_integer(raw, (1, maximum))
    if value is None:
        raise Problem(400, f"limit must be a whole number from 1 to {maximum}")
    return value


def next_link(request: web.Request, cursor: str) -> str:
    """The next page's link: the same query (a repeated parameter keeps every value, in order)
    with this cursor in place of any other."""
    query = MultiDict(request.query)
    query["cursor"] = cursor
    return f'<{request.rel_url.with_query(query)}>; rel="next"'


def reject_unknown_params(request: web.Request, allowed: Iterable[str]) -> None:
    unknown = sorted(set(request.query) - set(allowed))
    if unknown:
        noun = "parameter" if len(unknown) == 1 else "parameters"
        raise Problem(400, f"unknown query {noun}: {', '.join(unknown)}")


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

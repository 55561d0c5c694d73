"""Forwarding to the services over kept-alive connections: hop-by-hop headers dropped, bodies
passed as bytes (no JSON parsing here), large or unsized ones streamed, upstream failures
turned into problem+json 502/503/504."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from services.gateway.upstream import Upstream, UpstreamError, UpstreamUnavailable
from shared.problems import Problem

log = logging.getLogger("herald.gateway.proxy")

HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Host",
        "Content-Length",
        "Proxy-Connection",
    )
)
# Set by the gateway's own server on every response.
_RESPONSE_DROP = HOP_BY_HOP | {"date", "server"}
_BUFFER_LIMIT = 256 * 1024  # answers up to this size are read whole: one write instead of many


def make_session(limit: int = 64) -> aiohttp.ClientSession:
    """For the gateway's own occasional calls (readiness, documents), not for forwarding."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, keepalive_timeout=60, enable_cleanup_closed=True),
        auto_decompress=False,  # pass compressed bodies through untouched
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
        cookie_jar=aiohttp.DummyCookieJar(),
    )


def _connection_named(headers: Any) -> frozenset[str]:
    """Headers that the Connection header names are hop-by-hop too (RFC 9110 §7.6.1)."""
    if "Connection" not in headers:
        return frozenset()
    return frozenset(
        token.strip().lower() for value in headers.getall("Connection", ()) for token in value.split(",")
    )


def checked_path(request: web.Request) -> str:
    """The path and query to forward. Dot segments, empty segments and encoded slashes are
    refused: the upstream would resolve them to another route than the one chosen here."""
    url = request.rel_url
    raw = url.raw_path
    lowered = raw.lower()
    if "//" in raw or "%2f" in lowered or "%5c" in lowered or "\\" in raw:
        raise Problem(400, "the path must not hold empty segments or encoded slashes")
    if any(segment in (".", "..") for segment in url.path.split("/")):
        raise Problem(400, "the path must not hold . or .. segments")
    return url.raw_path_qs


_SET_HERE = frozenset({"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-request-id"})
# Methods that carry no body unless one is sent (no `Content-Length: 0` for them).
_BODYLESS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "CONNECT"})


def _request_head(
    request: web.Request,
    upstream: Upstream,
    target: str,
    request_id: str,
    client: str,
    body: bytes | None,
    chunked: bool,
) -> bytes:
    """The request line and headers to send upstream, as one block of bytes."""
    method = request.method
    in_headers = request.headers
    drop = HOP_BY_HOP | _connection_named(in_headers) if "Connection" in in_headers else HOP_BY_HOP
    lines = [f"{method} {upstream.path_prefix}{target} HTTP/1.1\r\nHost: {upstream.host_header}\r\n"]
    has_type = False
    for name, value in in_headers.items():
        lowered = name.lower()
        if lowered in drop or lowered in _SET_HERE:
            continue
        if lowered == "content-type":
            has_type = True
        lines.append(f"{name}: {value}\r\n")
    # The client address as the gateway worked it out with its own trusted proxies: a chain
    # the caller sent is never passed on, so nobody behind the gateway can be told a made-up one.
    lines.append(
        f"X-Forwarded-For: {client}\r\nX-Forwarded-Proto: {request.scheme}\r\n"
        f"X-Forwarded-Host: {request.host}\r\nX-Request-ID: {request_id}\r\n"
    )
    if body is not None or chunked:
        if not has_type:
            lines.append("Content-Type: application/octet-stream\r\n")
        lines.append(
            "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {len(body or b'')}\r\n"
        )
    elif method not in _BODYLESS:
        lines.append("Content-Length: 0\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("utf-8", "surrogateescape")


class BodyTooLarge(Exception):
    pass


async def _limited(stream: aiohttp.StreamReader, limit: int) -> AsyncIterator[bytes]:
    """An unsized request body in pieces, stopping past `limit` bytes."""
    seen = 0
    async for chunk in stream.iter_chunked(64 * 1024):
        seen += len(chunk)
        if seen > limit:
            raise BodyTooLarge
        yield chunk


def _response_headers(raw: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], int | None]:
    """The answer's end-to-end headers, and its Content-Length if it has one."""
    drop: frozenset[str] = _RESPONSE_DROP
    size = None
    for name, value in raw:
        lowered = name.lower()
        if lowered == "connection":
            drop = drop | frozenset(token.strip().lower() for token in value.split(","))
        elif lowered == "content-length" and value.strip().isdigit():
            size = int(value)
    return [(k, v) for k, v in raw if k.lower() not in drop], size  # the response copies them


async def forward(
    request: web.Request,
    upstream: Upstream,
    service: str,
    *,
    request_id: str,
    client: str,
    max_body: int,
) -> web.StreamResponse:
    length = request.content_length
    if length is not None and length > max_body:
        raise Problem(413, f"the body is larger than {max_body} bytes")
    body: bytes | None = None
    stream: AsyncIterator[bytes] | None = None
    if request.body_exists:
        if length is not None:
            body = await request.read()
        else:
            stream = _limited(request.content, max_body)
    head = _request_head(
        request, upstream, checked_path(request), request_id, client, body, stream is not None
    )
    try:
        exchange = await upstream.send(request.method, head, body, stream)
    except BodyTooLarge:
        raise Problem(413, f"the body is larger than {max_body} bytes") from None
    except UpstreamUnavailable:
        raise Problem(
            503, f"the {service} service is unavailable; try again shortly", headers={"Retry-After": "5"}
        ) from None
    except TimeoutError:
        raise Problem(504, f"the {service} service did not answer in time") from None
    except UpstreamError as exc:
        raise Problem(502, f"the {service} service failed to answer: {exc.kind}") from None
    try:
        out_headers, size = _response_headers(exchange.headers)
        if size is not None and size <= _BUFFER_LIMIT:
            try:
                data = await exchange.read()
            except TimeoutError:
                raise Problem(504, f"the {service} service did not answer in time") from None
            except (UpstreamError, BodyTooLarge) as exc:
                kind = exc.kind if isinstance(exc, UpstreamError) else "BodyTooLarge"
                raise Problem(502, f"the {service} service failed to answer: {kind}") from None
            return web.Response(body=data, status=exchange.status, headers=out_headers)
        response = web.StreamResponse(status=exchange.status, headers=out_headers)
        if size is not None:
            response.content_length = size
        await response.prepare(request)
        try:
            async for chunk in exchange.iter_chunks():
                await response.write(chunk)
            await response.write_eof()
        except (UpstreamError, BodyTooLarge, TimeoutError, ConnectionResetError) as exc:
            # The status line is gone already: a problem+json now would be spliced into the
            # body. Cut the connection so the client sees a truncated answer, not a wrong one.
            log.warning("the %s service's answer broke off: %s", service, type(exc).__name__)
            if request.transport is not None:
                request.transport.close()
        return response
    finally:
        exchange.release()

"""Forwarding to the services over kept-alive connections: hop-by-hop headers dropped, bodies
passed as bytes (no JSON parsing here), large or unsized ones streamed, upstream failures
turned into problem+json 502/503/504."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

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


def make_session(limit: int = 512) -> aiohttp.ClientSession:
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


def _request_headers(request: web.Request, request_id: str, client: str) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict()
    drop = HOP_BY_HOP | _connection_named(request.headers)
    for name, value in request.headers.items():
        if name.lower() not in drop:
            headers.add(name, value)
    # The client address as the gateway worked it out with its own trusted proxies: a chain
    # the caller sent is never passed on, so nobody behind the gateway can be told a made-up one.
    headers["X-Forwarded-For"] = client
    headers["X-Forwarded-Proto"] = request.scheme
    headers["X-Forwarded-Host"] = request.host
    headers["X-Request-ID"] = request_id
    return headers


class BodyTooLarge(Exception):
    pass


class _LimitedBody:
    """Streams an unsized request body, stopping past `limit` bytes. The client library wraps
    what the generator raises, so the verdict is also kept here for the caller to read."""

    def __init__(self, stream: aiohttp.StreamReader, limit: int) -> None:
        self.stream = stream
        self.limit = limit
        self.exceeded = False

    async def chunks(self) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in self.stream.iter_chunked(64 * 1024):
            seen += len(chunk)
            if seen > self.limit:
                self.exceeded = True
                raise BodyTooLarge
            yield chunk


async def forward(
    request: web.Request,
    session: aiohttp.ClientSession,
    base_url: str,
    service: str,
    *,
    request_id: str,
    client: str,
    max_body: int,
    client_timeout: aiohttp.ClientTimeout,
) -> web.StreamResponse:
    length = request.content_length
    if length is not None and length > max_body:
        raise Problem(413, f"the body is larger than {max_body} bytes")
    data: Any = None
    streamed: _LimitedBody | None = None
    if request.body_exists:
        if length is not None:
            data = await request.read()
        else:
            streamed = _LimitedBody(request.content, max_body)
            data = streamed.chunks()
    url = base_url + checked_path(request)
    headers = _request_headers(request, request_id, client)
    try:
        async with session.request(
            request.method, url, headers=headers, data=data, allow_redirects=False, timeout=client_timeout
        ) as upstream:
            drop = _RESPONSE_DROP | _connection_named(upstream.headers)
            out_headers = CIMultiDict((k, v) for k, v in upstream.headers.items() if k.lower() not in drop)
            size = upstream.content_length
            if size is not None and size <= _BUFFER_LIMIT:
                body = await upstream.read()
                return web.Response(body=body, status=upstream.status, headers=out_headers)
            response = web.StreamResponse(status=upstream.status, headers=out_headers)
            if size is not None:
                response.content_length = size
            await response.prepare(request)
            try:
                async for chunk in upstream.content.iter_chunked(64 * 1024):
                    await response.write(chunk)
                await response.write_eof()
            except (aiohttp.ClientError, TimeoutError, ConnectionResetError) as exc:
                # The status line is gone already: a problem+json now would be spliced into the
                # body. Cut the connection so the client sees a truncated answer, not a wrong one.
                log.warning("the %s service's answer broke off: %s", service, type(exc).__name__)
                if request.transport is not None:
                    request.transport.close()
            return response
    except BodyTooLarge:
        raise Problem(413, f"the body is larger than {max_body} bytes") from None
    except aiohttp.ClientConnectorError:
        raise Problem(
            503, f"the {service} service is unavailable; try again shortly", headers={"Retry-After": "5"}
        ) from None
    except (TimeoutError, aiohttp.ServerTimeoutError):
        raise Problem(504, f"the {service} service did not answer in time") from None
    except aiohttp.ClientError as exc:
        if streamed is not None and streamed.exceeded:
            raise Problem(413, f"the body is larger than {max_body} bytes") from None
        raise Problem(502, f"the {service} service failed to answer: {type(exc).__name__}") from None

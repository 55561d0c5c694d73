"""JSON request bodies in, JSON answers out."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from aiohttp import web

from shared.appkeys import SETTINGS
from shared.problems import Problem

JSON_CONTENT_TYPE = "application/json"


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

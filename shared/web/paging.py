"""Keyset paging: the page size, opaque cursors and the next page's link."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web
from multidict import MultiDict

from shared.problems import Problem
from shared.validation import parse_integer, parse_time


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

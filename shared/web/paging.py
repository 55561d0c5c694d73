"""Keyset paging: the page size, opaque cursors and the next page's link."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

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


def time_cursor(request: web.Request) -> tuple[datetime, uuid.UUID] | None:
    """The `cursor` parameter as `(time, id)` (see `time_key`), or None on the first page."""
    if "cursor" not in request.query:
        return None
    return decode_time_cursor(request.query["cursor"])


def time_key(row: Any) -> list[Any]:
    """A row's cursor: its creation time at full precision (a page boundary must not fall
    between two rows of one millisecond), then its id."""
    return [row["created_at"].isoformat(), str(row["id"])]


Row = TypeVar("Row")


def page(
    request: web.Request, rows: list[Row], limit: int, key: Callable[[Row], list[Any]] = time_key
) -> tuple[list[Row], dict[str, str]]:
    """`rows` as fetched, `limit + 1` at most (one more than the page says there is a next):
    the page, and its headers with the next page's link, whose cursor is `key` of its last row."""
    if len(rows) <= limit:
        return rows, {}
    rows = rows[:limit]
    return rows, {"Link": next_link(request, encode_cursor(key(rows[-1])))}

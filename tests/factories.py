"""Factories of what tests make over and over, with defaults a test overrides by keyword:
locations, events and webhook subscriptions through the API (their representation),
subscriptions written into the table with the engine's index caught up, and domain events published to the test's
exchange. Users: `Suite.new_user(roles)` (tests/conftest.py) makes them through the auth API."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import asyncpg
from aiohttp import web

from shared.config import Settings
from tests.conftest import Suite
from tests.delivery_support import Publisher, insert_subscription, wait_indexed

EVENT = {
    "title": "Launch party",
    "description": "Cake and speeches",
    "startsAt": "2027-03-01T18:00:00Z",
    "endsAt": "2027-03-01T21:00:00+00:00",
    "capacity": 80,
    "tags": ["party", "launch"],
}
LOCATION = {"name": "Main hall", "timezone": "Europe/Paris"}
MERGE = {"Content-Type": "application/merge-patch+json"}  # the headers of a PATCH


async def create(suite: Suite, token: str, type_: str, body: Any, **headers: str) -> tuple[Any, Any]:
    """POST a new resource of `type_`: the response and its body, whatever they are."""
    return await suite.request("POST", f"/v2/{type_}/list", token=token, json=body, headers=headers)


async def new_location(suite: Suite, token: str, **fields: Any) -> dict[str, Any]:
    """A location made by the holder of `token`; LOCATION with `fields` changed."""
    resp, body = await create(suite, token, "location", {**LOCATION, **fields})
    assert resp.status == 201, body
    return body


async def new_event(suite: Suite, token: str, **fields: Any) -> dict[str, Any]:
    """A draft event made by the holder of `token`; EVENT with `fields` changed."""
    resp, body = await create(suite, token, "event", {**EVENT, **fields})
    assert resp.status == 201, body
    return body


async def new_subscription(suite: Suite, token: str, **fields: Any) -> dict[str, Any]:
    """A webhook subscription made through the API by the holder of `token`: to event.* at a
    port of 127.0.0.1 where nothing listens (the suite must allow private receivers), with
    `fields` changed."""
    body = {"url": f"http://127.0.0.1:9/hook/{uuid.uuid4().hex}", "topics": ["event.*"], **fields}
    resp, sub = await suite.request("POST", "/v2/subscription/list", token=token, json=body)
    assert resp.status == 201, sub
    return dict(sub)


async def indexed_subscription(
    engine: web.Application, conn: asyncpg.Connection, url: str, topics: Iterable[str] = ("*",), **fields: Any
) -> dict[str, Any]:
    """insert_subscription's row, once the engine's index holds it (active or not, as made)."""
    sub = await insert_subscription(conn, url, topics, **fields)
    await wait_indexed(engine, sub, active=fields.get("active", True))
    return sub


async def published(settings: Settings, topic: str, count: int, name: str = "L") -> list[dict[str, Any]]:
    """`count` domain events of `topic` published in order, named `name`0, `name`1...; them."""
    async with Publisher(settings) as pub:
        return [await pub.event(topic, name=f"{name}{i}") for i in range(count)]

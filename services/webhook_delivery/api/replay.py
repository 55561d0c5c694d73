"""`POST /v2/subscription/{id}/replay`: send a subscription again every stored event of a time
window that it would be sent now (its topics and filter; events its owner may read with the
roles the owner has now, judged on the event as it was sent), whether it was delivered before,
failed, or happened before the subscription existed. Each goes out as a new delivery (same
webhook-id: the event id) on the retry lane.

The request picks the events and answers with how many; a background job (recovery.py) then
makes their deliveries a page at a time. A window holds at most REPLAY_LIMIT events of the
subscription's topics, and must not reach back into what retention pruned (422 either way)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from aiohttp import web

from services.webhook_delivery.api.access import own_subscription, require_active
from services.webhook_delivery.api.delivery_handlers import RECOVER, TIME, read_window
from services.webhook_delivery.api.recovery import RECOVERIES, Item, Job
from services.webhook_delivery.filters import stored_filter
from services.webhook_delivery.matching import covered_topics, owner_may_read
from services.webhook_delivery.store.event_repo import EventRepo
from shared.appkeys import DATABASE, SETTINGS
from shared.events import format_time
from shared.problems import NotFound, ValidationFailed
from shared.web.json_io import json_response

routes = web.RouteTableDef()

REPLAY_LIMIT = 10_000  # events of the subscription's topics one window may hold
READ_PAGE = 500  # event bodies read at a time while picking
REPLAY: dict[str, Any] = {  # the window of `recover`, of events
    **RECOVER,
    "properties": {
        "since": {**TIME, "description": "Replay the events that happened at or after this time."},
        "until": {**TIME, "description": "... and before this time (default: now)."},
    },
}

Window = list[tuple[datetime, uuid.UUID]]  # (created at, event id), oldest first


def _too_old(pruned: datetime, retention: int) -> ValidationFailed:
    kept = f"{retention // 86400} days" if retention % 86400 == 0 else f"{retention} seconds"
    return ValidationFailed(
        [
            {
                "field": "since",
                "message": f"events are kept {kept} (HERALD_EVENT_RETENTION) and those up to"
                f" {format_time(pruned)} were pruned: start the window after that",
            }
        ]
    )


def _too_many() -> ValidationFailed:
    return ValidationFailed(
        [
            {
                "field": "until",
                "message": f"the window holds more than {REPLAY_LIMIT} events of the subscription's"
                " topics, the most one replay sends: replay it in shorter windows",
            }
        ]
    )


async def _pick(conn: asyncpg.Connection, sub_id: uuid.UUID, since: datetime, until: datetime) -> Window:
    """The window's events this subscription would be sent now, oldest first."""
    repo = EventRepo(conn)
    sub = await repo.replay_subscription(sub_id)
    if sub is None:
        raise NotFound("no such subscription")  # deleted since the request began
    candidates = await repo.window(covered_topics(sub["topics"]), since, until, REPLAY_LIMIT + 1)
    if len(candidates) > REPLAY_LIMIT:
        raise _too_many()
    owner_id, roles = str(sub["owner_id"]), sub["owner_roles"]
    passes_filter = stored_filter(sub_id, sub["filter"])
    wanted: set[uuid.UUID] = set()
    for start in range(0, len(candidates), READ_PAGE):
        page = [event_id for _, event_id in candidates[start : start + READ_PAGE]]
        for event_id, topic, body in await repo.bodies(page):
            envelope = _envelope(body)
            data = envelope.get("data")
            readable = owner_may_read(topic, data if isinstance(data, dict) else {}, sub_id, owner_id, roles)
            if readable and passes_filter(envelope):
                wanted.add(event_id)
    return [c for c in candidates if c[1] in wanted]


def _envelope(body: bytes) -> Mapping[str, Any]:
    """The stored event as the fan-out read it (the bytes it stored)."""
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return envelope if isinstance(envelope, dict) else {}


def replay_job(sub_id: uuid.UUID, events: Window, page: int, since: datetime, until: datetime) -> Job:
    replay_id = uuid.uuid4()

    async def step(conn: asyncpg.Connection, start: int | None) -> tuple[list[Item], int | None]:
        start = start or 0
        chunk = [event_id for _, event_id in events[start : start + page]]
        items = await EventRepo(conn).replay(sub_id, replay_id, chunk)
        return items, (start + page if start + page < len(events) else None)

    def rest(start: int | None) -> str:
        resume = format_time(events[start or 0][0])
        return f"the rest were not replayed: replay again with since {resume}"

    return Job(
        f"replaying to subscription {sub_id}",
        "events",
        len(events),
        f"from {format_time(since)} to {format_time(until)} (replay {replay_id})",
        step,
        rest,
    )


@routes.post("/v2/subscription/{id}/replay")
async def replay(request: web.Request) -> web.Response:
    sub_id, active = await own_subscription(request)
    since, until = await read_window(request, REPLAY)
    require_active(active)
    until = until or datetime.now(UTC)
    async with request.app[DATABASE].connection() as conn:
        pruned = await EventRepo(conn).pruned_through()
        if pruned is not None and since <= pruned:
            raise _too_old(pruned, request.app[SETTINGS].event_retention)
        events = await _pick(conn, sub_id, since, until) if since < until else []
    if events:
        recoveries = request.app[RECOVERIES]
        recoveries.run(replay_job(sub_id, events, recoveries.page, since, until))
    return json_response({"events": len(events)}, status=202)

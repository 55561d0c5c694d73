"""HTTP handlers of the delivery log and its commands: list a subscription's deliveries with
their attempts, retry one, recover a window of failed or skipped ones (in the background:
recovery.py), and ping. Only the subscription's owner or an admin gets an answer; anyone else
gets the same 404 as a missing one."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web

from services.webhook_delivery import lanes
from services.webhook_delivery.api.access import own_subscription, require_active
from services.webhook_delivery.api.recovery import RECOVERIES
from services.webhook_delivery.store.delivery_repo import (
    FAILED,
    FIRST,
    PENDING,
    SKIPPED,
    SUCCEEDED,
    DeliveryRepo,
    public_delivery,
)
from shared.appkeys import BROKER, DATABASE
from shared.authn import principal
from shared.events import WEBHOOK_PING, make_event
from shared.problems import Problem, ValidationFailed
from shared.validation import TIME_MESSAGE, parse_time, validate
from shared.web.json_io import json_response, read_json
from shared.web.paging import page, parse_limit, time_cursor
from shared.web.params import path_uuid, reject_unknown_params

routes = web.RouteTableDef()

STATUSES = (PENDING, SUCCEEDED, FAILED, SKIPPED)
TIME = {"type": "string", "format": "date-time"}
RECOVER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "since": {**TIME, "description": "Redeliver what was created at or after this time."},
        "until": {**TIME, "description": "... and before this time (default: now)."},
    },
    "required": ["since"],
    "additionalProperties": False,
}
PING_MESSAGE = "Herald says hello: this subscription's URL receives and verifies webhooks."


def time_field(body: Mapping[str, Any], name: str) -> datetime | None:
    raw = body.get(name)
    if raw is None:
        return None
    moment = parse_time(raw)
    if moment is None:
        raise ValidationFailed([{"field": name, "message": TIME_MESSAGE}])
    return moment


@routes.get("/v2/subscription/{id}/deliveries")
async def list_deliveries(request: web.Request) -> web.Response:
    sub_id, _active = await own_subscription(request)
    reject_unknown_params(request, ("status", "limit", "cursor"))
    status = request.query.get("status")
    if status is not None and status not in STATUSES:
        raise Problem(400, f"status must be one of {', '.join(STATUSES)}")
    limit = parse_limit(request)
    after = time_cursor(request)
    async with request.app[DATABASE].connection() as conn:
        rows = await DeliveryRepo(conn).page(sub_id, status, after, limit + 1)
    rows, headers = page(request, rows, limit)
    return json_response([public_delivery(r) for r in rows], headers=headers)


@routes.post("/v2/subscription/{id}/deliveries/{deliveryId}/retry")
async def retry_delivery(request: web.Request) -> web.Response:
    sub_id, active = await own_subscription(request)
    delivery_id = path_uuid(request, "delivery", "deliveryId")
    require_active(active)
    async with request.app[DATABASE].transaction() as conn:
        repo = DeliveryRepo(conn)
        item = await repo.redeliver(sub_id, delivery_id)
        row = await repo.one(sub_id, delivery_id)
    await lanes.publish(request.app[BROKER], [item])
    return json_response(public_delivery(row), status=202)


async def read_window(request: web.Request, schema: dict[str, Any]) -> tuple[datetime, datetime | None]:
    """`since` and `until` (None: not given) of a body that `schema` validates."""
    body = await read_json(request)
    validate(schema, body)
    since, until = time_field(body, "since"), time_field(body, "until")
    assert since is not None
    if until is not None and until <= since:
        raise ValidationFailed([{"field": "until", "message": "must be after since"}])
    return since, until


@routes.post("/v2/subscription/{id}/recover")
async def recover(request: web.Request) -> web.Response:
    sub_id, active = await own_subscription(request)
    since, until = await read_window(request, RECOVER)
    require_active(active)
    async with request.app[DATABASE].connection() as conn:
        count, end = await DeliveryRepo(conn).recoverable(sub_id, since, until)
    if count:
        request.app[RECOVERIES].start(sub_id, since, end, count)
    return json_response({"deliveries": count}, status=202)


@routes.post("/v2/subscription/{id}/ping")
async def ping(request: web.Request) -> web.Response:
    sub_id, active = await own_subscription(request)
    require_active(active)
    event = make_event(
        WEBHOOK_PING, {"subscriptionId": str(sub_id), "message": PING_MESSAGE}, principal(request).user_id
    )
    async with request.app[DATABASE].transaction() as conn:
        row = await DeliveryRepo(conn).create_single(
            sub_id, uuid.UUID(event["id"]), WEBHOOK_PING, orjson.dumps(event)
        )
    await lanes.publish(request.app[BROKER], [(row["id"], sub_id, FIRST)])
    return json_response(public_delivery(row), status=202)

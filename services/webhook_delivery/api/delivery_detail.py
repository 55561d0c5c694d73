"""Reading one delivery (each attempt with the request headers it sent, secrets masked) and a
subscription's delivery statistics per minute, hour or day. Same access rule as the delivery
log (delivery_handlers.py): the owner or an admin; anyone else gets 404."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from aiohttp import web

from services.webhook_delivery import sent_headers
from services.webhook_delivery.api.access import own_subscription
from services.webhook_delivery.api.delivery_handlers import time_field
from services.webhook_delivery.store.delivery_repo import DeliveryRepo, public_delivery
from services.webhook_delivery.store.stats_repo import ORIGIN, SPANS, StatsRepo, percentiles
from shared.appkeys import DATABASE
from shared.events import format_time, utc_now
from shared.problems import ValidationFailed
from shared.web.json_io import json_response
from shared.web.params import path_uuid, reject_unknown_params

routes = web.RouteTableDef()

# The window asked for when `since` is not given, by bucket.
DEFAULT_WINDOWS = {"minute": timedelta(hours=1), "hour": timedelta(hours=24), "day": timedelta(days=30)}
DEFAULT_BUCKET = "hour"
MAX_BUCKETS = 1500  # a day by minute, however its ends fall


@routes.get("/v2/subscription/{id}/deliveries/{deliveryId}")
async def get_delivery(request: web.Request) -> web.Response:
    sub_id, _active = await own_subscription(request)
    delivery_id = path_uuid(request, "delivery", "deliveryId")
    reject_unknown_params(request, ())
    async with request.app[DATABASE].connection() as conn:
        repo = DeliveryRepo(conn)
        row = await repo.one(sub_id, delivery_id)
        extra = await repo.subscription_headers(sub_id)
    shown = public_delivery(row)
    for attempt, logged in zip(shown["attempts"], row["attempt_log"], strict=True):
        attempt["requestHeaders"] = sent_headers.shown(extra, shown["eventId"], logged["attempted_at"])
    return json_response(shown)


@routes.get("/v2/subscription/{id}/stats")
async def delivery_stats(request: web.Request) -> web.Response:
    sub_id, _active = await own_subscription(request)
    reject_unknown_params(request, ("since", "until", "bucket"))
    name = request.query.get("bucket", DEFAULT_BUCKET)
    if name not in SPANS:
        raise ValidationFailed([{"field": "bucket", "message": f"must be one of {', '.join(SPANS)}"}])
    width = SPANS[name]
    start, end = _window(request, width, DEFAULT_WINDOWS[name])
    async with request.app[DATABASE].connection() as conn:
        buckets = await StatsRepo(conn).buckets(sub_id, name, start, end)
    shown = []
    for i, b in enumerate(buckets):
        p50, p95 = percentiles(b.durations, (0.5, 0.95)) if b.durations else (None, None)
        shown.append(
            {
                "start": format_time(start + width * i),
                "succeeded": b.succeeded,
                "failed": b.failed,
                "pending": b.pending,
                "attempts": b.attempts,
                "p50Ms": _ms(p50),
                "p95Ms": _ms(p95),
            }
        )
    return json_response(shown)


def _window(request: web.Request, width: timedelta, default_span: timedelta) -> tuple[datetime, datetime]:
    """Where the first bucket starts and the last ends: `since` rounded down and `until` up to
    whole buckets (UTC)."""
    since, until = time_field(request.query, "since"), time_field(request.query, "until")
    try:
        until = until or utc_now()
        since = since or until - default_span
        start = ORIGIN + (since - ORIGIN) // width * width
        count = math.ceil((until - start) / width)
        end = start + width * count
    except OverflowError:
        raise ValidationFailed([{"field": "since", "message": "the window leaves years 1 to 9999"}]) from None
    if until <= since:
        raise ValidationFailed([{"field": "until", "message": "must be after since"}])
    if count > MAX_BUCKETS:
        raise ValidationFailed(
            [
                {
                    "field": "bucket",
                    "message": f"the window holds {count} buckets, at most {MAX_BUCKETS}:"
                    " use a wider bucket or a shorter window",
                }
            ]
        )
    return start, end


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)

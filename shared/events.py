"""The event contract: topic names and the envelope that producers and consumers share."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

# Auth's, on the auth exchange (the domain exchange's topics are the catalog's, shared/catalog.py).
USER_CREATED = "user.created"
USER_CREDENTIALS_CHANGED = "user.credentials_changed"
USER_DELETED = "user.deleted"
# A subscription's test delivery (POST /v2/subscription/{id}/ping).
WEBHOOK_PING = "webhook.ping"
# Webhook delivery's operational events, about a subscription and its deliveries: published on
# the domain exchange and delivered only to the owner's other subscriptions and admins'.
SUBSCRIPTION_DISABLED = "subscription.disabled"
SUBSCRIPTION_FAILING = "subscription.failing"
SUBSCRIPTION_RECOVERED = "subscription.recovered"
DELIVERY_FAILED = "delivery.failed"
OPERATIONAL_TOPICS = frozenset(
    {SUBSCRIPTION_DISABLED, SUBSCRIPTION_FAILING, SUBSCRIPTION_RECOVERED, DELIVERY_FAILED}
)


def format_time(moment: datetime) -> str:
    """RFC 3339, UTC, milliseconds: the one time format of the API and the events."""
    t = moment.astimezone(UTC)
    # Not strftime: its %Y drops the leading zeros of years before 1000, and text order must
    # stay time order.
    return (
        f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}."
        f"{t.microsecond // 1000:03d}Z"
    )


def utc_now() -> datetime:
    return datetime.now(UTC)


def make_event(
    type_: str,
    data: dict[str, Any] | orjson.Fragment,
    actor_id: str | None = None,
    *,
    event_id: str | None = None,
) -> dict[str, Any]:
    """`data` may be JSON already made (a Fragment): it goes into the body as it is."""
    return {
        "id": event_id or str(uuid.uuid4()),
        "type": type_,
        "timestamp": format_time(utc_now()),
        "data": data,
        "actor": {"id": actor_id},
    }

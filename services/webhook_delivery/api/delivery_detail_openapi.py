"""The OpenAPI paths and models of one delivery and of the delivery statistics
(`delivery_detail.py`), a part of the service's fragment beside the delivery log's."""

from __future__ import annotations

from typing import Any

from services.webhook_delivery.api.delivery_detail import DEFAULT_BUCKET, MAX_BUCKETS
from services.webhook_delivery.api.delivery_openapi import (
    ATTEMPT,
    DELIVERY,
    DELIVERY_ID,
    SUB_ID,
    delivery_operation,
)
from services.webhook_delivery.sent_headers import MASK
from services.webhook_delivery.store.stats_repo import SPANS
from shared.openapi import json_response, query_param, schema_ref
from shared.problems import ValidationFailed

ATTEMPT_SENT: dict[str, Any] = {
    **ATTEMPT,
    "title": "SubscriptionDeliveryAttemptSent",
    "properties": {
        **ATTEMPT["properties"],
        "requestHeaders": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "The request headers of this attempt: the subscription's custom headers (as"
            " they are now), with the value of any whose name suggests a credential (auth, token,"
            f" key, secret, ...) shown as `{MASK}`; webhook-id, webhook-timestamp (the attempt's"
            " start, in seconds), webhook-signature (masked), content-type and user-agent.",
        },
    },
    "required": [*ATTEMPT["required"], "requestHeaders"],
}
DELIVERY_DETAIL: dict[str, Any] = {
    **DELIVERY,
    "title": "SubscriptionDeliveryDetail",
    "properties": {
        **DELIVERY["properties"],
        "attempts": {
            "type": "array",
            "items": schema_ref("SubscriptionDeliveryAttemptSent"),
            "description": "Oldest first.",
        },
    },
}
COUNT = {"type": "integer", "minimum": 0}
MS = {"type": ["number", "null"], "minimum": 0}
STATS_BUCKET: dict[str, Any] = {
    "title": "SubscriptionStatsBucket",
    "type": "object",
    "properties": {
        "start": {"type": "string", "format": "date-time", "description": "The bucket's start (UTC)."},
        "attempts": {**COUNT, "description": "Attempts started in the bucket."},
        "succeeded": {
            **COUNT,
            "description": "Of those, the ones the receiver accepted (2xx): deliveries that succeeded.",
        },
        "failed": {
            **COUNT,
            "description": "Of those, the failed ones after which the delivery was given up (no retry"
            " left, or 410 Gone). attempts - succeeded - failed failed and will be retried.",
        },
        "pending": {
            **COUNT,
            "description": "Deliveries created in the bucket that are still pending now (waiting for"
            " their first attempt or a retry).",
        },
        "p50Ms": {**MS, "description": "Median duration of the bucket's attempts; null without any."},
        "p95Ms": {**MS, "description": "95th percentile of their durations; null without any."},
    },
    "required": ["start", "attempts", "succeeded", "failed", "pending", "p50Ms", "p95Ms"],
}
STATS_DESCRIPTION = (
    "One entry per bucket from `since` (rounded down to a whole bucket, UTC) to `until` (rounded"
    " up), empty ones included with zeros, oldest first. Without `until`: now; without `since`:"
    " the last hour by minute, the last 24 hours by hour, the last 30 days by day. At most"
    f" {MAX_BUCKETS} buckets (a day by minute fits). Durations come from a histogram with four buckets"
    " per doubling: a percentile is within about 19% of the exact one. Read from a per-minute"
    " rollup, so it is cheap to poll."
)
STATS_EXAMPLE = [
    {
        "start": "2026-01-01T10:00:00Z",
        "attempts": 14,
        "succeeded": 11,
        "failed": 1,
        "pending": 2,
        "p50Ms": 38.2,
        "p95Ms": 410.0,
    },
    {
        "start": "2026-01-01T11:00:00Z",
        "attempts": 0,
        "succeeded": 0,
        "failed": 0,
        "pending": 0,
        "p50Ms": None,
        "p95Ms": None,
    },
]
TOO_MANY = ValidationFailed(
    [
        {
            "field": "bucket",
            "message": f"the window holds 10080 buckets, at most {MAX_BUCKETS}: use a wider bucket or a"
            " shorter window",
        }
    ]
)
TIME = {"type": "string", "format": "date-time"}


def detail_paths() -> tuple[dict[str, Any], dict[str, Any]]:
    """(paths, component schemas) of one delivery and the statistics."""
    paths = {
        "/v2/subscription/{id}/deliveries/{deliveryId}": {
            "get": delivery_operation(
                "getDelivery",
                "One delivery with its attempts and the request headers each sent",
                {"200": json_response("The delivery", schema_ref("SubscriptionDeliveryDetail"))},
                [400],
                parameters=[SUB_ID, DELIVERY_ID],
            )
        },
        "/v2/subscription/{id}/stats": {
            "get": delivery_operation(
                "getDeliveryStats",
                "Attempts, outcomes, pending deliveries and durations per minute, hour or day",
                {
                    "200": json_response(
                        "The buckets, oldest first",
                        {"type": "array", "items": schema_ref("SubscriptionStatsBucket")},
                        example=STATS_EXAMPLE,
                    )
                },
                [400],
                examples=[TOO_MANY],
                parameters=[
                    SUB_ID,
                    query_param("since", "From this time (default: see above).", TIME),
                    query_param("until", "To this time (default: now).", TIME),
                    query_param(
                        "bucket",
                        "The width of a bucket.",
                        {"type": "string", "enum": list(SPANS), "default": DEFAULT_BUCKET},
                    ),
                ],
                description=STATS_DESCRIPTION,
            )
        },
    }
    schemas = {
        "SubscriptionDeliveryDetail": DELIVERY_DETAIL,
        "SubscriptionDeliveryAttemptSent": ATTEMPT_SENT,
        "SubscriptionStatsBucket": STATS_BUCKET,
    }
    return paths, schemas

"""The OpenAPI 3.1 paths and models of the delivery log routes (`delivery_handlers.py`), for the
service's fragment at /openapi.json to merge with the subscription routes."""

from __future__ import annotations

from typing import Any

from services.webhook_delivery.api.delivery_handlers import RECOVER, STATUSES
from shared import openapi as oas

TAGS = ["Webhook deliveries"]
UUID = {"type": "string", "format": "uuid"}
TIME = {"type": "string", "format": "date-time"}
NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}

ATTEMPT: dict[str, Any] = {
    "title": "SubscriptionDeliveryAttempt",
    "type": "object",
    "properties": {
        "at": TIME,
        "statusCode": {"type": ["integer", "null"], "description": "null when no answer came"},
        "durationMs": {"type": "number"},
        "error": {"type": ["string", "null"], "description": "Why the attempt failed; null on success."},
        "responseBody": {"type": "string", "description": "The first 1 KiB of the receiver's answer."},
    },
    "required": ["at", "statusCode", "durationMs", "error", "responseBody"],
}

DELIVERY: dict[str, Any] = {
    "title": "SubscriptionDelivery",
    "type": "object",
    "properties": {
        "id": UUID,
        "subscriptionId": UUID,
        "eventId": {**UUID, "description": "The webhook-id header of every attempt."},
        "topic": {"type": "string"},
        "status": {"type": "string", "enum": list(STATUSES)},
        "lane": {"type": "string", "enum": ["first", "retry"]},
        "attemptCount": {"type": "integer", "minimum": 0},
        "nextAttemptAt": {**NULLABLE_TIME, "description": "When a pending delivery is due."},
        "lastStatusCode": {"type": ["integer", "null"]},
        "lastError": {"type": ["string", "null"]},
        "createdAt": TIME,
        "updatedAt": TIME,
        "attempts": {"type": "array", "items": {"$ref": "#/components/schemas/SubscriptionDeliveryAttempt"}},
    },
    "required": ["id", "subscriptionId", "eventId", "topic", "status", "attemptCount", "attempts"],
}

RECOVERED: dict[str, Any] = {
    "title": "SubscriptionRecoverResult",
    "type": "object",
    "properties": {
        "deliveries": {
            "type": "integer",
            "minimum": 0,
            "description": "How many failed and skipped deliveries the window held when asked:"
            " those being sent again.",
        },
    },
    "required": ["deliveries"],
}
RECOVER_DESCRIPTION = (
    "Every delivery of the subscription created in the window (from `since`, up to `until` or"
    " now) that is `failed` or `skipped` is sent again: made `pending`, due now on the retry"
    " lane. The answer comes at once, with how many that is; they are re-queued in the"
    " background, a page at a time, oldest first, and show as `pending` in the delivery log as"
    " they are. If the service stops before the job is done, what it had not reached is still"
    " `failed` or `skipped`: recover the same window again (that takes only what is still"
    " failed or skipped)."
)

RECOVER_EXAMPLE = {"since": "2026-01-01T00:00:00Z"}


def _errors(*statuses: int) -> dict[str, Any]:
    return oas.problems(401, 404, *statuses)


SUB_ID = oas.path_param("id", "The subscription id.")
DELIVERY_ID = oas.path_param("deliveryId", "The delivery id.")


def delivery_operation(
    op_id: str, summary: str, responses: dict[str, Any], *, parameters: list[Any] | None = None, **more: Any
) -> dict[str, Any]:
    """An operation of the delivery routes (this module's, delivery_detail's, replay's): their
    tag, and the subscription id as the parameter unless `parameters` says otherwise."""
    return oas.operation(op_id, summary, TAGS, responses, parameters=parameters or [SUB_ID], **more)


def delivery_paths() -> tuple[dict[str, Any], dict[str, Any]]:
    """(paths, component schemas) of the delivery routes."""
    delivery = oas.schema_ref("SubscriptionDelivery")
    paths = {
        "/v2/subscription/{id}/deliveries": {
            "get": delivery_operation(
                "listDeliveries",
                "A subscription's deliveries, newest first, each with its attempts",
                {
                    "200": oas.paged_list(delivery, "A page of deliveries"),
                    **_errors(400),
                },
                parameters=[
                    SUB_ID,
                    oas.query_param("status", "Only these.", {"type": "string", "enum": list(STATUSES)}),
                    oas.LIMIT_PARAM,
                    oas.CURSOR_PARAM,
                ],
            )
        },
        "/v2/subscription/{id}/deliveries/{deliveryId}/retry": {
            "post": delivery_operation(
                "retryDelivery",
                "Send one delivery again now (on the retry lane)",
                {
                    "202": oas.json_response("Due now; its attempts will show in the log", delivery),
                    **_errors(409),
                },
                parameters=[SUB_ID, DELIVERY_ID],
            )
        },
        "/v2/subscription/{id}/recover": {
            "post": delivery_operation(
                "recoverDeliveries",
                "Send again every failed or skipped delivery created in a time window",
                {
                    "202": oas.json_response(
                        "Accepted: re-queued in the background", oas.schema_ref("SubscriptionRecoverResult")
                    ),
                    **_errors(400, 409, 413, 415, 422),
                },
                description=RECOVER_DESCRIPTION,
                request_body=oas.json_body(
                    oas.schema_ref("SubscriptionRecoverRequest"), example=RECOVER_EXAMPLE
                ),
            )
        },
        "/v2/subscription/{id}/ping": {
            "post": delivery_operation(
                "pingSubscription",
                "Send a signed webhook.ping event to the subscription's URL now",
                {"202": oas.json_response("The ping's delivery, pending", delivery), **_errors(409)},
            )
        },
    }
    # Prefixed like the subscription routes' models (the docs service merges every service's).
    schemas = {
        "SubscriptionDelivery": DELIVERY,
        "SubscriptionDeliveryAttempt": ATTEMPT,
        "SubscriptionRecoverRequest": {"title": "SubscriptionRecoverRequest", **RECOVER},
        "SubscriptionRecoverResult": RECOVERED,
    }
    return paths, schemas

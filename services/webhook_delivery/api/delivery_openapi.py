"""The OpenAPI 3.1 paths and models of the delivery log routes (`delivery_handlers.py`) and of
replay (`replay.py`), for the service's fragment at /openapi.json to merge with the
subscription routes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from services.webhook_delivery.api.delivery_handlers import RECOVER, STATUSES
from services.webhook_delivery.api.replay import REPLAY, REPLAY_LIMIT
from shared import openapi as oas
from shared.problems import Problem

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

REPLAY_DESCRIPTION = (
    "Every stored event created in the window (from `since`, up to `until` or now) that the"
    " subscription would be sent now is sent again as a new delivery: the events of its topics"
    " that pass its filter and that its owner may read (with the roles the owner has now, judged on the event as it"
    " was), whether they were delivered before, failed, or happened before the subscription"
    " existed. Each keeps its event id as `webhook-id`, so a receiver that already has it can"
    " tell. The answer comes at once, with how many events that is; their deliveries are made"
    " in the background, oldest first, due now on the retry lane, and show in the delivery log"
    f" as they are. A window holds at most {REPLAY_LIMIT} events of the subscription's topics"
    " (422 beyond: replay shorter windows), and must start after the newest event pruned so"
    " far: events are kept `HERALD_EVENT_RETENTION` (30 days by default), then pruned with"
    " their deliveries (422 for a window that reaches back into them)."
)
# Succeeds as it stands on a young installation; once events have been pruned, pick a window
# within the retention.
REPLAY_EXAMPLE = {"since": "2026-11-01T00:00:00Z", "until": "2026-11-02T00:00:00Z"}

REPLAYED: dict[str, Any] = {
    "title": "SubscriptionReplayResult",
    "type": "object",
    "properties": {
        "events": {
            "type": "integer",
            "minimum": 0,
            "maximum": REPLAY_LIMIT,
            "description": "How many events of the window are being sent again.",
        },
    },
    "required": ["events"],
}


SUB_ID = oas.path_param("id", "The subscription id.")
DELIVERY_ID = oas.path_param("deliveryId", "The delivery id.")


def delivery_operation(
    op_id: str,
    summary: str,
    answers: dict[str, Any],
    errors: Iterable[int] = (),
    *,
    examples: Iterable[Problem] = (),
    parameters: list[Any] | None = None,
    **more: Any,
) -> dict[str, Any]:
    """An operation of the delivery routes (this module's and delivery_detail's): their tag, the
    subscription id as the parameter unless `parameters` says otherwise, and its `answers`
    beside its problems: `errors` (with `examples`, see `problems`) and those every delivery
    route may answer, 401 and 404 (no such subscription, or someone else's)."""
    responses = {**answers, **oas.problems(401, 404, *errors, examples=examples)}
    return oas.operation(op_id, summary, TAGS, responses, parameters=parameters or [SUB_ID], **more)


def _window_command(
    op_id: str, summary: str, accepted: str, models: tuple[str, str], example: Any, description: str
) -> dict[str, Any]:
    """recover and replay: a time window in (`models`: the request's and the answer's), 202 at
    once with how many, while the work goes on in the background."""
    request, result = models
    return delivery_operation(
        op_id,
        summary,
        {"202": oas.json_response(accepted, oas.schema_ref(result))},
        [400, 409, 413, 415, 422],
        description=description,
        request_body=oas.json_body(oas.schema_ref(request), example=example),
    )


def delivery_paths() -> tuple[dict[str, Any], dict[str, Any]]:
    """(paths, component schemas) of the delivery log, its commands and replay."""
    delivery = oas.schema_ref("SubscriptionDelivery")
    paths = {
        "/v2/subscription/{id}/deliveries": {
            "get": delivery_operation(
                "listDeliveries",
                "A subscription's deliveries, newest first, each with its attempts",
                {"200": oas.paged_list(delivery, "A page of deliveries")},
                [400],
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
                {"202": oas.json_response("Due now; its attempts will show in the log", delivery)},
                [409],
                parameters=[SUB_ID, DELIVERY_ID],
            )
        },
        "/v2/subscription/{id}/recover": {
            "post": _window_command(
                "recoverDeliveries",
                "Send again every failed or skipped delivery created in a time window",
                "Accepted: re-queued in the background",
                ("SubscriptionRecoverRequest", "SubscriptionRecoverResult"),
                RECOVER_EXAMPLE,
                RECOVER_DESCRIPTION,
            )
        },
        "/v2/subscription/{id}/replay": {
            "post": _window_command(
                "replayEvents",
                "Send again every event of a time window the subscription would be sent now",
                "Accepted: the deliveries are made in the background",
                ("SubscriptionReplayRequest", "SubscriptionReplayResult"),
                REPLAY_EXAMPLE,
                REPLAY_DESCRIPTION,
            )
        },
        "/v2/subscription/{id}/ping": {
            "post": delivery_operation(
                "pingSubscription",
                "Send a signed webhook.ping event to the subscription's URL now",
                {"202": oas.json_response("The ping's delivery, pending", delivery)},
                [409],
            )
        },
    }
    # Prefixed like the subscription routes' models (the docs service merges every service's).
    schemas = {
        "SubscriptionDelivery": DELIVERY,
        "SubscriptionDeliveryAttempt": ATTEMPT,
        "SubscriptionRecoverRequest": {"title": "SubscriptionRecoverRequest", **RECOVER},
        "SubscriptionRecoverResult": RECOVERED,
        "SubscriptionReplayRequest": {"title": "SubscriptionReplayRequest", **REPLAY},
        "SubscriptionReplayResult": REPLAYED,
    }
    return paths, schemas

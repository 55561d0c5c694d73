"""The OpenAPI 3.1 path and models of `POST /v2/subscription/{id}/replay` (`replay.py`), a part
of the service's fragment beside the subscription and delivery routes."""

from __future__ import annotations

from typing import Any

from services.webhook_delivery.api.delivery_openapi import delivery_operation
from services.webhook_delivery.api.replay import REPLAY, REPLAY_LIMIT
from shared.openapi import json_body, json_response, problems, schema_ref

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


def replay_paths() -> tuple[dict[str, Any], dict[str, Any]]:
    """(paths, component schemas) of the replay route."""
    paths = {
        "/v2/subscription/{id}/replay": {
            "post": delivery_operation(
                "replayEvents",
                "Send again every event of a time window the subscription would be sent now",
                {
                    "202": json_response(
                        "Accepted: the deliveries are made in the background",
                        schema_ref("SubscriptionReplayResult"),
                    ),
                    **problems(400, 401, 404, 409, 413, 415, 422),
                },
                request_body=json_body(schema_ref("SubscriptionReplayRequest"), example=REPLAY_EXAMPLE),
                description=REPLAY_DESCRIPTION,
            )
        }
    }
    schemas = {
        "SubscriptionReplayRequest": {"title": "SubscriptionReplayRequest", **REPLAY},
        "SubscriptionReplayResult": REPLAYED,
    }
    return paths, schemas

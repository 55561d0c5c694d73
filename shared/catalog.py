"""The event catalog: every topic of the domain exchange, what it means, and the JSON Schema of
its payload. With the envelope of shared/events.py it is the event contract, so it lives here
where producers (resource), consumers (webhook delivery) and the API document (docs) all read it.

The resource service's type declarations take their representation schemas from here (`EVENT`,
`LOCATION`); a test keeps the two identical.
"""

from __future__ import annotations

from typing import Any

from shared.events import WEBHOOK_PING

UUID = {"type": "string", "format": "uuid"}
TIME = {"type": "string", "format": "date-time"}

EVENT_STATUSES = ("draft", "pending", "approved", "rejected", "cancelled")
# Events in these states are visible to every user (the API) and reach every subscriber whose
# topics match (webhooks); the others only their owner, approvers and admins.
PUBLIC_EVENT_STATUSES = ("approved", "cancelled")


def _record(title: str, fields: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """A stored resource's schema: its id, its own fields, then what the server keeps (owner,
    times, version), read-only."""
    return {
        "title": title,
        "type": "object",
        "properties": {
            "id": {**UUID, "readOnly": True},
            **fields,
            "ownerId": {**UUID, "readOnly": True},
            "createdAt": {**TIME, "readOnly": True},
            "updatedAt": {**TIME, "readOnly": True},
            "version": {"type": "integer", "minimum": 1, "readOnly": True},
        },
        "required": required,
    }


EVENT: dict[str, Any] = _record(
    "Event",
    {
        "title": {"type": "string", "minLength": 1, "maxLength": 200},
        "description": {"type": ["string", "null"], "maxLength": 10000},
        "startsAt": TIME,
        "endsAt": {**TIME, "description": "Not before startsAt."},
        "locationId": {"type": ["string", "null"], "format": "uuid", "description": "An existing location."},
        "capacity": {"type": ["integer", "null"], "minimum": 0, "maximum": 1000000},
        "tags": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 50},
            "maxItems": 20,
            "uniqueItems": True,
        },
        "status": {"type": "string", "enum": list(EVENT_STATUSES), "readOnly": True},
    },
    ["title", "startsAt", "endsAt"],
)

LOCATION: dict[str, Any] = _record(
    "Location",
    {
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "address": {"type": ["string", "null"], "maxLength": 1000},
        "capacity": {"type": ["integer", "null"], "minimum": 0, "maximum": 1000000},
        "timezone": {
            "type": "string",
            "minLength": 1,
            "maxLength": 64,
            "default": "UTC",
            "description": "An IANA time zone.",
        },
    },
    ["name"],
)

PING: dict[str, Any] = {
    "title": "Ping",
    "type": "object",
    "properties": {"subscriptionId": UUID, "message": {"type": "string"}},
    "required": ["subscriptionId"],
}

# topic -> (description, payload `data` schema)
TOPICS: dict[str, tuple[str, dict[str, Any]]] = {
    "event.created": ("An event was created (as a draft).", EVENT),
    "event.updated": ("An event's content changed; an approved event goes back to pending.", EVENT),
    "event.deleted": ("An event was deleted; data is the event as it was.", EVENT),
    "event.submitted": ("The owner submitted a draft for approval.", EVENT),
    "event.approved": ("An approver approved a pending event.", EVENT),
    "event.rejected": ("An approver rejected a pending event.", EVENT),
    "event.cancelled": ("An approved event was cancelled.", EVENT),
    "location.created": ("A location was created.", LOCATION),
    "location.updated": ("A location changed.", LOCATION),
    "location.deleted": ("A location was deleted; data is the location as it was.", LOCATION),
    WEBHOOK_PING: ("Sent by POST /v2/subscription/{id}/ping to test a receiver.", PING),
}


def envelope_schema(topic: str) -> dict[str, Any]:
    """The JSON Schema of a whole message (or webhook body) of `topic`."""
    _, data = TOPICS[topic]
    return {
        "type": "object",
        "properties": {
            "id": {**UUID, "description": "The event id: the same on every retry (webhook-id)."},
            "type": {"const": topic},
            "timestamp": TIME,
            "data": data,
            "actor": {
                "type": "object",
                "properties": {"id": {"type": ["string", "null"], "format": "uuid"}},
            },
        },
        "required": ["id", "type", "timestamp", "data"],
    }

"""JSON Schemas of the subscriptions API: they validate request bodies and document the API.
What a schema cannot say (topics from the catalog, reserved header names, the URL's target) is
checked in `rules.py`."""

from __future__ import annotations

from typing import Any

from services.webhook_delivery import filters

UUID: dict[str, Any] = {"type": "string", "format": "uuid"}
TIME: dict[str, Any] = {"type": "string", "format": "date-time"}
MAX_HEADERS = 20
MAX_TOPICS = 50

URL: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 2048,
    "description": "http(s) URL of the receiver. Hosts resolving to loopback, private, link-local "
    "or metadata addresses are refused (unless the server allows private addresses).",
    "examples": ["https://hooks.example.com/herald"],
}
TOPICS: dict[str, Any] = {
    "type": "array",
    "items": {"type": "string", "minLength": 1, "maxLength": 100},
    "minItems": 1,
    "maxItems": MAX_TOPICS,
    "uniqueItems": True,
    "description": "Topic names from GET /v2/topic/list, `<prefix>.*` patterns (`event.*`), or `*`.",
    "examples": [["event.approved", "location.*"]],
}
DESCRIPTION: dict[str, Any] = {"type": "string", "maxLength": 1000}
ACTIVE: dict[str, Any] = {
    "type": "boolean",
    "description": "false: no deliveries (events are recorded as skipped). Setting it to true "
    "again clears disabledReason.",
}
HEADERS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": {"type": "string", "maxLength": 2048},
    "maxProperties": MAX_HEADERS,
    "description": "Extra request headers sent with each delivery. Names and values without "
    "CR/LF; webhook-*, content-*, host, user-agent and hop-by-hop names are reserved.",
    "examples": [{"Authorization": "Bearer receiver-token"}],
}
FILTER: dict[str, Any] = {
    "type": ["object", "null"],
    "description": "Which events of the topics to deliver: conditions on the event envelope "
    "(`id`, `type`, `timestamp`, `actor`, `data`), all of which must hold. A key is a dotted "
    "path (`data.capacity`); a value is a JSON value to equal or one operator object "
    "(`eq ne in nin gt gte lt lte exists`); `$or`, `$and` (arrays of filters) and `$not` (a "
    "filter) combine. An array in the event equals a value it contains. null: every event. At "
    f"most {filters.MAX_CONDITIONS} conditions, {filters.MAX_DEPTH} levels of nesting and "
    f"{filters.MAX_BYTES} bytes. PATCH replaces the filter whole (it is not merged). The test "
    "ping ignores it. See docs/filters.md.",
    "examples": [
        {"data.locationId": "2f0e4c9a-5b7d-4a51-9a43-4d1c1f1e2b3c", "data.capacity": {"gte": 50}},
        {"$or": [{"type": "event.approved"}, {"data.tags": {"in": ["public", "featured"]}}]},
    ],
}

READ_ONLY: dict[str, Any] = {
    "id": {**UUID, "readOnly": True},
    "ownerId": {**UUID, "readOnly": True},
    "createdAt": {**TIME, "readOnly": True},
    "updatedAt": {**TIME, "readOnly": True},
    "version": {"type": "integer", "minimum": 1, "readOnly": True},
    "disabledReason": {
        "type": ["string", "null"],
        "readOnly": True,
        "description": "Why delivery turned the subscription off (410 Gone, failing for days, "
        "owner deleted); null while active.",
    },
}
WRITABLE: dict[str, Any] = {
    "url": URL,
    "topics": TOPICS,
    "description": DESCRIPTION,
    "active": ACTIVE,
    "headers": HEADERS,
    "filter": FILTER,
}

SUBSCRIPTION: dict[str, Any] = {
    "type": "object",
    "properties": {**READ_ONLY, **WRITABLE},
    "required": [*READ_ONLY, *WRITABLE],
}

SECRET: dict[str, Any] = {
    "type": "string",
    "pattern": "^whsec_",
    "description": "Standard Webhooks signing secret: `whsec_` + base64 of 32 bytes.",
}

SUBSCRIPTION_CREATED: dict[str, Any] = {
    "type": "object",
    "properties": {**SUBSCRIPTION["properties"], "secret": SECRET},
    "required": [*SUBSCRIPTION["required"], "secret"],
}

SUBSCRIPTION_CREATE: dict[str, Any] = {
    "type": "object",
    "properties": WRITABLE,
    "required": ["url", "topics"],
    "additionalProperties": False,
}

SUBSCRIPTION_REPLACE: dict[str, Any] = {
    "type": "object",
    "properties": {**READ_ONLY, **WRITABLE},
    # PUT replaces every writable field; one without a filter has none.
    "required": [name for name in WRITABLE if name != "filter"],
    "additionalProperties": False,
}

# JSON Merge Patch: `null` clears description, headers (and a single header inside headers) and
# filter. A filter replaces the one before whole: merging two filters key by key would make a
# third that nobody wrote.
SUBSCRIPTION_PATCH: dict[str, Any] = {
    "type": "object",
    "properties": {
        **READ_ONLY,
        **WRITABLE,
        "description": {**DESCRIPTION, "type": ["string", "null"]},
        "headers": {
            **HEADERS,
            "type": ["object", "null"],
            "additionalProperties": {"type": ["string", "null"], "maxLength": 2048},
        },
    },
    "additionalProperties": False,
}

SECRETS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "secret": SECRET,
        "previousSecret": {
            **SECRET,
            "description": "The secret before the last rotation; it signs too until previousSecretExpiresAt.",
        },
        "previousSecretExpiresAt": TIME,
    },
    "required": ["secret"],
}

TOPIC: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "examples": ["event.approved"]},
        "description": {"type": "string"},
        "schema": {"type": "object", "description": "JSON Schema of the webhook body of this topic."},
    },
    "required": ["name", "description", "schema"],
}

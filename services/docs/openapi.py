"""The whole public API as one OpenAPI 3.1 document at GET /v2/openapi.json: the docs service's
own fragment (the shared problem response, the bearer scheme, the webhooks of the topic catalog)
merged with the fragment each service serves at /openapi.json.

Refreshing, lazily on a request for the document, one refresh at a time:
- a service whose fragment could not be had yet (down, not started, or no fragment) is asked
  again at most every `retry_seconds`; until then it is left out, with one log line;
- a fragment older than `max_age` seconds is revalidated with `If-None-Match`, so a service
  restarted with other routes shows within that time, and an unchanged one costs a 304;
- a fragment that fails revalidation is kept as it was (the service is most likely restarting)
  and asked for again after `retry_seconds`.
A fragment that conflicts with what is merged already is left out and logged as an error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from shared.authn import public
from shared.catalog import TOPICS, envelope_schema
from shared.logging import request_id_var
from shared.openapi import (
    FRAGMENT_PATH,
    MergeConflict,
    document_response,
    empty_response,
    etag_of,
    fragment,
    header,
    header_param,
    json_response,
    merge,
    operation,
    problem,
    problem_responses,
    schema_ref,
)

log = logging.getLogger("herald.docs.openapi")

DOCUMENT_PATH = "/v2/openapi.json"
MAX_AGE_SECONDS = 30.0
RETRY_SECONDS = 1.0
FETCH_TIMEOUT = aiohttp.ClientTimeout(total=2)

DESCRIPTION = """\
Herald's public API. JSON in and out; times are RFC 3339 UTC; ids are UUIDs.

**Tokens.** `POST /v2/requesttoken` answers with the JWT as a JSON string. Press **Authorize**
and paste it without the quotes: every call then sends `Authorization: Bearer <token>`.

**Lists** are JSON arrays, paged by an opaque cursor: the next page is in the
`Link: <...>; rel="next"` header.

**Errors** are RFC 9457 `application/problem+json`; `instance` is the request id, which every
answer also carries in `X-Request-ID` (send your own, when well-formed, to follow a call).

**Webhooks** are signed with Standard Webhooks v1: see the `webhooks` section.

**Examples.** Every request example succeeds as it stands with "Try it out": `POST /v2/user/list`
creates the user whose email and password `POST /v2/requesttoken` sends; an event's optional
`locationId` names a location created first (`POST /v2/location/list`); a subscription's `url`
must reach your receiver. Each error response shows an answer of its own status.
"""

TAGS = [
    {"name": "tokens", "description": "Tokens and the keys that verify them."},
    {"name": "users", "description": "Users and their credentials (assigned by an administrator)."},
    {"name": "documents", "description": "This document and Swagger UI."},
]  # webhooks have a section of their own in Swagger UI: a tag would show an empty group

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details.",
    "type": "object",
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string", "description": "The request id (X-Request-ID)."},
        "errors": {
            "type": "array",
            "description": "With 422: each field that broke the schema.",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                "required": ["field", "message"],
            },
        },
    },
    "required": ["type", "title", "status", "detail", "instance"],
}

WEBHOOK_HEADERS = [
    header_param("webhook-id", "The event id: the same on every retry; de-duplicate on it.", required=True),
    header_param(
        "webhook-timestamp",
        "Unix seconds of this attempt; refuse it when far from now (5 minutes).",
        {"type": "string", "pattern": "^[0-9]+$"},
        required=True,
    ),
    header_param(
        "webhook-signature",
        "`v1,<base64 HMAC-SHA256 of '{webhook-id}.{webhook-timestamp}.{body}'>` with the "
        "subscription's secret (base64 after `whsec_`); space-separated when two secrets sign "
        "during a rotation.",
        required=True,
    ),
]


def _webhook_schema_name(topic: str) -> str:
    """`event.created` -> `EventCreatedWebhook`."""
    return "".join(part.capitalize() for part in topic.replace("_", ".").split(".")) + "Webhook"


def webhooks() -> tuple[dict[str, Any], dict[str, Any]]:
    """One webhook per topic of the catalog, and the envelope schemas they use."""
    hooks: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for topic, (description, _data) in TOPICS.items():
        name = _webhook_schema_name(topic)
        schemas[name] = {**envelope_schema(topic), "title": f"{topic} webhook"}
        hooks[topic] = {
            "post": {
                "operationId": f"webhook.{topic}",
                "summary": description,
                "tags": ["webhooks"],
                "security": [],
                "parameters": WEBHOOK_HEADERS,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": schema_ref(name)}},
                },
                "responses": {
                    "2XX": empty_response("Received. Anything else (or no answer in time) is retried."),
                    "410": empty_response("Gone: the subscription is disabled."),
                },
            }
        }
    return hooks, schemas


def docs_fragment() -> dict[str, Any]:
    paths = {
        DOCUMENT_PATH: {
            "get": operation(
                "getOpenApi",
                "This document: the whole API as OpenAPI 3.1",
                ["documents"],
                {
                    "200": json_response(
                        "The merged document of every service.",
                        {"type": "object"},
                        headers={"ETag": header("The document's version.")},
                    ),
                    "304": empty_response("Unchanged since the ETag sent in If-None-Match."),
                },
                public=True,
            )
        },
        "/docs": {
            "get": operation(
                "getDocs",
                "Swagger UI for this document",
                ["documents"],
                {
                    "200": {
                        "description": "The Swagger UI page.",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
                public=True,
            )
        },
    }
    hooks, hook_schemas = webhooks()
    doc = fragment("Herald API", paths, {"Problem": PROBLEM_SCHEMA, **hook_schemas}, description=DESCRIPTION)
    doc["components"]["responses"] = problem_responses()
    doc["components"]["securitySchemes"] = {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "The token from POST /v2/requesttoken, without the quotes.",
        }
    }
    doc["security"] = [{"bearerAuth": []}]
    doc["tags"] = TAGS
    doc["webhooks"] = hooks
    return doc


@dataclass
class Upstream:
    name: str
    url: str
    fragment: dict[str, Any] | None = None
    etag: str | None = None
    checked_at: float | None = None  # never asked yet
    failing: bool = False


class ApiDocument:
    """The merged document, cached as bytes with its ETag (see the module's docstring)."""

    def __init__(
        self,
        own: dict[str, Any],
        upstreams: dict[str, str],
        sessions: Callable[[], dict[str, aiohttp.ClientSession]],
        *,
        max_age: float = MAX_AGE_SECONDS,
        retry_seconds: float = RETRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.own = own
        self.upstreams = [Upstream(name, url) for name, url in upstreams.items()]
        self.sessions = sessions
        self.max_age = max_age
        self.retry_seconds = retry_seconds
        self.clock = clock
        self.included: list[str] = []
        self._lock = asyncio.Lock()
        self._body = b""
        self._etag = ""
        self._build()

    def _due(self, upstream: Upstream, now: float) -> bool:
        if upstream.checked_at is None:
            return True
        wait = self.retry_seconds if upstream.fragment is None or upstream.failing else self.max_age
        return now - upstream.checked_at >= wait

    async def current(self) -> tuple[bytes, str]:
        """The document and its ETag, refreshed first when a fragment is due."""
        if any(self._due(u, self.clock()) for u in self.upstreams):
            async with self._lock:
                due = [u for u in self.upstreams if self._due(u, self.clock())]
                if due:  # another request may have refreshed them while this one waited
                    changed = await asyncio.gather(*(self._fetch(u) for u in due))
                    if any(changed):
                        self._build()
        return self._body, self._etag

    async def _fetch(self, upstream: Upstream) -> bool:
        """Ask one service for its fragment; whether it changed."""
        headers = {"X-Request-ID": request_id_var.get() or ""}
        if upstream.etag and upstream.fragment is not None:
            headers["If-None-Match"] = upstream.etag
        session = self.sessions()[upstream.name]
        try:
            async with session.get(
                upstream.url + FRAGMENT_PATH, headers=headers, timeout=FETCH_TIMEOUT
            ) as resp:
                if resp.status == 304:
                    return self._answered(upstream)
                if resp.status != 200:
                    raise ValueError(f"it answered {resp.status}")
                document = orjson.loads(await resp.read())
                if not isinstance(document, dict) or not isinstance(document.get("paths"), dict):
                    raise ValueError("it is not an OpenAPI document with paths")
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            self._failed(upstream, f"{type(exc).__name__}: {exc}")
            return False
        changed = document != upstream.fragment
        upstream.fragment = document
        upstream.etag = resp.headers.get("ETag")
        self._answered(upstream)
        return changed

    def _answered(self, upstream: Upstream) -> bool:
        if upstream.failing:
            log.info("the %s service's OpenAPI fragment is back", upstream.name)
        upstream.failing = False
        upstream.checked_at = self.clock()
        return False

    def _failed(self, upstream: Upstream, reason: str) -> None:
        if not upstream.failing:  # one line when it starts failing, not one per retry
            log.warning(
                "the %s service's OpenAPI fragment could not be fetched (%s); %s",
                upstream.name,
                reason,
                "keeping the last one" if upstream.fragment else "left out of /v2/openapi.json",
            )
        upstream.failing = True
        upstream.checked_at = self.clock()

    def _build(self) -> None:
        merged = merge([self.own])
        included = []
        for upstream in self.upstreams:
            if upstream.fragment is None:
                continue
            try:
                merged = merge([merged, upstream.fragment])
            except MergeConflict as exc:
                log.error("the %s service's OpenAPI fragment is left out: %s", upstream.name, exc)
                continue
            included.append(upstream.name)
        self.included = included
        add_edge_responses(merged)
        self._body = orjson.dumps(merged)
        self._etag = etag_of(self._body)


# What the edge itself may answer to any operation, whichever service serves it: a malformed
# path (400), a rate limit (429), a body too large (413), an upstream that fails (502, 503, 504).
EDGE_STATUSES = (400, 429, 502, 503, 504)
METHODS = ("get", "put", "post", "patch", "delete")


def add_edge_responses(document: dict[str, Any]) -> None:
    for item in document["paths"].values():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            statuses = EDGE_STATUSES + ((413,) if "requestBody" in operation else ())
            for status in statuses:
                responses.setdefault(str(status), problem(status))


API_DOCUMENT = web.AppKey("api_document", ApiDocument)


@public
async def openapi_document(request: web.Request) -> web.Response:
    body, etag = await request.app[API_DOCUMENT].current()
    return document_response(request, body, etag)


def add_routes(
    app: web.Application,
    upstreams: dict[str, str],
    sessions: Callable[[], dict[str, aiohttp.ClientSession]],
) -> None:
    app[API_DOCUMENT] = ApiDocument(docs_fragment(), upstreams, sessions)
    app.router.add_get(DOCUMENT_PATH, openapi_document)

"""The OpenAPI 3.1 fragment of the webhook delivery service, built from the same schemas that
validate requests (`schemas.py`), served at `GET /openapi.json` for the docs service to merge.
Error responses point at `#/components/responses/Problem{status}`, which the docs service's
fragment defines."""

from __future__ import annotations

from typing import Any

from services.webhook_delivery.api import schemas
from shared.openapi import (
    CURSOR_PARAM,
    IF_MATCH_PARAM,
    IF_NONE_MATCH_PARAM,
    LIMIT_PARAM,
    fragment,
    header,
    json_body,
    json_response,
    paged_list,
    path_param,
    problems,
    schema_ref,
)
from shared.web.json_io import JSON_CONTENT_TYPE
from shared.web.writes import MERGE_PATCH

Paths = dict[str, Any]
Schemas = dict[str, Any]
TAGS = ["Webhook subscriptions"]


def _errors(*statuses: int) -> dict[str, Any]:
    # 401 everywhere: every route here needs a token.
    return problems(401, *statuses)


def _body(name: str, example: dict[str, Any], *content_types: str) -> dict[str, Any]:
    return json_body(schema_ref(name), content_types=content_types, example=example)


# What Swagger UI's "Try it out" sends; each succeeds as it stands (a test executes them). The
# URL must resolve to a public address (unless HERALD_WEBHOOK_ALLOW_PRIVATE): put your receiver's.
EXAMPLE_URL = "https://example.com/webhooks/herald"
CREATE_EXAMPLE = {
    "url": EXAMPLE_URL,
    "topics": ["event.approved", "location.*"],
    "description": "Public events and places for 50 people or more",
    "filter": {"data.capacity": {"gte": 50}},
}
REPLACE_EXAMPLE = {
    **CREATE_EXAMPLE,
    "active": True,
    "headers": {"Authorization": "Bearer receiver-token"},
    "rateLimit": 50,
}
# The filter replaces the one before whole (merge patch does not merge inside it); null clears it.
PATCH_EXAMPLE = {"topics": ["event.*"], "filter": {"data.tags": "public"}}


ETAG = {"ETag": header("The subscription's version, for If-Match and If-None-Match.")}
ID_PARAM = path_param("id", "The subscription id.")

SCHEMAS: Schemas = {
    "Subscription": schemas.SUBSCRIPTION,
    "SubscriptionCreated": schemas.SUBSCRIPTION_CREATED,
    "SubscriptionInput": schemas.SUBSCRIPTION_CREATE,
    "SubscriptionReplace": schemas.SUBSCRIPTION_REPLACE,
    "SubscriptionPatch": schemas.SUBSCRIPTION_PATCH,
    "SubscriptionSecrets": schemas.SECRETS,
    "Topic": schemas.TOPIC,
}


def _operation(op_id: str, summary: str, responses: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {
        "operationId": op_id,
        "summary": summary,
        "tags": more.pop("tags", TAGS),
        "parameters": more.pop("parameters", []),
        **more,
        "responses": responses,
    }


def subscription_paths() -> tuple[Paths, Schemas]:
    sub = schema_ref("Subscription")
    secrets = json_response(
        "The signing secrets",
        schema_ref("SubscriptionSecrets"),
        headers={"Cache-Control": header("no-store")},
    )

    def secret(op_id: str, summary: str) -> dict[str, Any]:
        """Reading the signing secrets and rotating them: the same answers."""
        return _operation(op_id, summary, {"200": secrets, **_errors(404)}, parameters=[ID_PARAM])

    paths: Paths = {
        "/v2/topic/list": {
            "get": _operation(
                "listTopics",
                "The event catalog: every topic with its description and webhook body schema",
                {
                    "200": json_response("Every topic", {"type": "array", "items": schema_ref("Topic")}),
                    **_errors(),
                },
                tags=["Topics"],
            )
        },
        "/v2/subscription/list": {
            "get": _operation(
                "listSubscriptions",
                "Your subscriptions (admins: everyone's), oldest first, paged",
                {
                    "200": paged_list(sub, "A page of subscriptions"),
                    **_errors(400),
                },
                parameters=[LIMIT_PARAM, CURSOR_PARAM],
            ),
            "post": _operation(
                "createSubscription",
                "Subscribe a URL to topics; the response carries the signing secret",
                {
                    "201": json_response(
                        "Created",
                        schema_ref("SubscriptionCreated"),
                        headers={**ETAG, "Location": header("The new subscription's path.")},
                    ),
                    **_errors(400, 409, 413, 415, 422),
                },
                requestBody=_body("SubscriptionInput", CREATE_EXAMPLE, JSON_CONTENT_TYPE),
            ),
        },
        "/v2/subscription/{id}": {
            "get": _operation(
                "getSubscription",
                "One subscription",
                {
                    "200": json_response("The subscription", sub, headers=ETAG),
                    "304": {"description": "Not modified since the ETag in If-None-Match", "headers": ETAG},
                    **_errors(404),
                },
                parameters=[ID_PARAM, IF_NONE_MATCH_PARAM],
            ),
            "put": _operation(
                "replaceSubscription",
                "Replace a subscription's writable fields",
                {
                    "200": json_response("The changed subscription", sub, headers=ETAG),
                    **_errors(400, 404, 409, 412, 413, 415, 422),
                },
                parameters=[ID_PARAM, IF_MATCH_PARAM],
                requestBody=_body("SubscriptionReplace", REPLACE_EXAMPLE, JSON_CONTENT_TYPE),
            ),
            "patch": _operation(
                "patchSubscription",
                "Change some fields (JSON Merge Patch; active: true re-enables and clears disabledReason)",
                {
                    "200": json_response("The changed subscription", sub, headers=ETAG),
                    **_errors(400, 404, 409, 412, 413, 415, 422),
                },
                parameters=[ID_PARAM, IF_MATCH_PARAM],
                requestBody=_body("SubscriptionPatch", PATCH_EXAMPLE, *MERGE_PATCH),
            ),
            "delete": _operation(
                "deleteSubscription",
                "Delete a subscription",
                {"204": {"description": "Deleted"}, **_errors(404, 412)},
                parameters=[ID_PARAM, IF_MATCH_PARAM],
            ),
        },
        "/v2/subscription/{id}/secret": {
            "get": secret(
                "getSubscriptionSecret", "The signing secret, and the previous one while it still signs"
            )
        },
        "/v2/subscription/{id}/secret/rotate": {
            "post": secret(
                "rotateSubscriptionSecret",
                "Make a new signing secret; the old one keeps signing during the overlap (24 h)",
            )
        },
    }
    return paths, dict(SCHEMAS)


def document(*parts: tuple[Paths, Schemas]) -> dict[str, Any]:
    """The service's fragment: its parts' paths and schemas together (the delivery routes are
    another part). Two parts declaring the same operation or schema name is a bug: refuse."""
    paths: Paths = {}
    models: Schemas = {}
    for part_paths, part_schemas in parts:
        for path, operations in part_paths.items():
            here = paths.setdefault(path, {})
            if here.keys() & operations.keys():
                raise ValueError(f"{path} is declared twice")
            here.update(operations)
        if models.keys() & part_schemas.keys():
            raise ValueError(f"schemas declared twice: {sorted(models.keys() & part_schemas.keys())}")
        models.update(part_schemas)
    return fragment("Herald webhook delivery", paths, models)

"""HTTP handlers of the subscriptions API and the topic catalog. A member sees and changes only
their own subscriptions (someone else's is a 404, as if it did not exist); admins see all."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from services.webhook_delivery import operational
from services.webhook_delivery.api import rules, schemas
from services.webhook_delivery.api.access import owner_scope
from services.webhook_delivery.ssrf import url_key
from services.webhook_delivery.store.subscription_repo import (
    SubscriptionRepo,
    public_secrets,
    public_subscription,
)
from shared.appkeys import DATABASE, SETTINGS
from shared.authn import principal
from shared.catalog import TOPICS, envelope_schema
from shared.events import utc_now
from shared.problems import Problem
from shared.validation import validate
from shared.web.conditional import check_if_match, etag, etag_matches
from shared.web.json_io import JSON_CONTENT_TYPE, json_response, read_json
from shared.web.paging import page, parse_limit, time_cursor
from shared.web.params import ITEM_ID, path_uuid, reject_unknown_params
from shared.web.writes import MERGE_PATCH, check_read_only
from shared.webhooks import new_secret

TOPIC_LIST = orjson.dumps(
    [
        {"name": name, "description": description, "schema": envelope_schema(name)}
        for name, (description, _) in TOPICS.items()
    ]
)

routes = web.RouteTableDef()


def _etag(row: dict[str, Any]) -> str:
    return etag(row["version"])


def _shown(row: dict[str, Any], status: int = 200, **extra: Any) -> web.Response:
    headers = {"ETag": _etag(row)}
    if status == 201:
        headers["Location"] = f"/v2/subscription/{row['id']}"
    if "secret" in extra:
        headers["Cache-Control"] = "no-store"
    return json_response({**public_subscription(row), **extra}, status=status, headers=headers)


# -- subscriptions ---------------------------------------------------------------------------


@routes.get("/v2/subscription/list")
async def list_subscriptions(request: web.Request) -> web.Response:
    reject_unknown_params(request, ("limit", "cursor"))
    limit = parse_limit(request)
    after = time_cursor(request)
    async with request.app[DATABASE].connection() as conn:
        rows = await SubscriptionRepo(conn).page(owner_scope(principal(request)), after, limit + 1)
    rows, headers = page(request, rows, limit)
    return json_response([public_subscription(r) for r in rows], headers=headers)


@routes.post("/v2/subscription/list")
async def create_subscription(request: web.Request) -> web.Response:
    caller = principal(request)
    body = await read_json(request)
    if isinstance(body, dict):
        for name in schemas.READ_ONLY.keys() & body.keys():
            raise Problem(400, f"{name} is read-only and is set by the server")
    validate(schemas.SUBSCRIPTION_CREATE, body)
    topics = rules.check_topics(body["topics"])
    headers = rules.check_headers(body.get("headers", {}))
    filter_ = rules.check_filter(body.get("filter"))
    url = rules.parse_url(body["url"])
    await rules.check_target(url, allow_private=request.app[SETTINGS].webhook_allow_private)
    async with request.app[DATABASE].connection() as conn:
        row = await SubscriptionRepo(conn).create(
            owner_id=caller.user_id,
            owner_roles=list(caller.roles),
            url=body["url"],
            url_key=url_key(url),
            topics=topics,
            description=body.get("description", ""),
            headers=headers,
            active=body.get("active", True),
            secret=new_secret(),
            filter_=filter_,
            rate_limit=_rate_limit(body.get("rateLimit")),
        )
    return _shown(row, status=201, secret=row["secret"])


@routes.get(f"/v2/subscription/{ITEM_ID}")
async def get_subscription(request: web.Request) -> web.Response:
    async with request.app[DATABASE].connection() as conn:
        row = await SubscriptionRepo(conn).get(
            path_uuid(request, "subscription"), owner_scope(principal(request))
        )
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        # Weak comparison here (RFC 9110 §13.1.2): `W/"3"` matches `"3"`.
        if etag_matches(if_none_match, row["version"], weak=True):
            return web.Response(status=304, headers={"ETag": _etag(row)})
    return _shown(row)


def _merge_headers(current: dict[str, str], patch: dict[str, str | None] | None) -> dict[str, str]:
    """RFC 7396 on the headers object: `null` removes one header, a `null` object clears all."""
    if patch is None:
        return {}
    merged = dict(current)
    for name, value in patch.items():
        # Header names ignore case: a patch of `x-token` replaces `X-Token`.
        for existing in [n for n in merged if n.lower() == name.lower()]:
            del merged[existing]
        if value is not None:
            merged[name] = value
    return merged


async def _change(request: web.Request, *, patch: bool) -> web.Response:
    """PUT and PATCH share everything but the schema and how headers combine."""
    caller = principal(request)
    sub_id = path_uuid(request, "subscription")
    body = await read_json(request, MERGE_PATCH if patch else (JSON_CONTENT_TYPE,))
    validate(schemas.SUBSCRIPTION_PATCH if patch else schemas.SUBSCRIPTION_REPLACE, body)
    if "topics" in body:
        rules.check_topics(body["topics"])
    if not patch:
        rules.check_headers(body["headers"])
    # PUT without a filter has none; PATCH replaces it whole, or (null) clears it.
    keep_filter = patch and "filter" not in body
    filter_ = None if keep_filter else rules.check_filter(body.get("filter"))
    url = rules.parse_url(body["url"]) if "url" in body else None
    if url is not None:
        # Before the transaction: no row lock or pooled connection is held while DNS answers.
        await rules.check_target(url, allow_private=request.app[SETTINGS].webhook_allow_private)
    async with request.app[DATABASE].transaction() as conn:
        repo = SubscriptionRepo(conn)
        before = await repo.get(sub_id, owner_scope(caller), for_update=True)
        check_if_match(request, before["version"], "subscription")
        check_read_only(body, schemas.READ_ONLY, public_subscription(before))
        wanted: dict[str, Any] = {k: body[k] for k in ("topics", "active") if k in body}
        if "description" in body:
            wanted["description"] = body["description"] or ""
        if "headers" in body:
            headers = body["headers"]
            wanted["headers"] = rules.check_headers(
                _merge_headers(before["headers"], headers) if patch else headers
            )
        if "rateLimit" in body or not patch:  # PUT: absent is none
            wanted["rate_limit"] = _rate_limit(body.get("rateLimit"))
        if url is not None:
            wanted["url"], wanted["url_key"] = body["url"], url_key(url)
        changes = {k: v for k, v in wanted.items() if before[k] != v}
        if not keep_filter and _json(before["filter"]) != _json(filter_):
            changes["filter"] = filter_
        if "url_key" in changes or changes.get("active") is True:
            # A new receiver, or one switched back on, starts with a clean record.
            changes["failing_since"] = changes["failing_reported_at"] = None
        if changes.get("active") is True:
            changes["disabled_reason"] = None
        after = await repo.update(sub_id, before["version"], changes) if changes else before
        if changes.get("active") is False and after is not None:
            await operational.Reporter(conn, request.app[DATABASE].schema).disabled(
                [after], operational.BY_HAND, actor_id=caller.user_id
            )
    assert after is not None  # the row is locked: its version cannot have moved
    return _shown(after)


def _json(value: Any) -> bytes:
    """For comparing JSON values: Python's == takes 1 for true, and jsonb reorders keys."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _rate_limit(value: int | float | None) -> int | None:
    """The schema let through an integer (JSON Schema counts 5.0 as one): as an int."""
    return None if value is None else int(value)


@routes.put(f"/v2/subscription/{ITEM_ID}")
async def put_subscription(request: web.Request) -> web.Response:
    return await _change(request, patch=False)


@routes.patch(f"/v2/subscription/{ITEM_ID}")
async def patch_subscription(request: web.Request) -> web.Response:
    return await _change(request, patch=True)


@routes.delete(f"/v2/subscription/{ITEM_ID}")
async def delete_subscription(request: web.Request) -> web.Response:
    sub_id = path_uuid(request, "subscription")
    async with request.app[DATABASE].transaction() as conn:
        repo = SubscriptionRepo(conn)
        before = await repo.get(sub_id, owner_scope(principal(request)), for_update=True)
        check_if_match(request, before["version"], "subscription")
        await repo.delete(sub_id, before["version"])
    return web.Response(status=204)


# -- secrets ---------------------------------------------------------------------------------


@routes.get("/v2/subscription/{id}/secret")
async def get_secret(request: web.Request) -> web.Response:
    async with request.app[DATABASE].connection() as conn:
        row = await SubscriptionRepo(conn).get(
            path_uuid(request, "subscription"), owner_scope(principal(request))
        )
    return json_response(public_secrets(row, utc_now()), headers={"Cache-Control": "no-store"})


@routes.post("/v2/subscription/{id}/secret/rotate")
async def rotate_secret(request: web.Request) -> web.Response:
    sub_id = path_uuid(request, "subscription")
    overlap = request.app[SETTINGS].webhook_secret_overlap
    async with request.app[DATABASE].transaction() as conn:
        repo = SubscriptionRepo(conn)
        await repo.get(sub_id, owner_scope(principal(request)), for_update=True)
        row = await repo.rotate_secret(sub_id, new_secret(), overlap)
    return json_response(public_secrets(row, utc_now()), headers={"Cache-Control": "no-store"})


# -- topics ----------------------------------------------------------------------------------


@routes.get("/v2/topic/list")
async def list_topics(request: web.Request) -> web.Response:
    return web.Response(body=TOPIC_LIST, content_type=JSON_CONTENT_TYPE, charset="utf-8")

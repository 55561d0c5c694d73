"""The subscriptions API and the topic catalog, through the edge, against real PostgreSQL and
RabbitMQ. Receiver URLs are public address literals (no DNS, no traffic: saving never calls
them) unless a test is about private addresses."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from services.webhook_delivery.app import create_app as webhook_app
from shared.catalog import TOPICS, envelope_schema
from shared.config import Settings
from tests.conftest import Suite, start_suite
from tests.factories import new_subscription

MERGE = {"Content-Type": "application/merge-patch+json"}
PUBLIC_IP = "93.184.215.14"


def _url(path: str = "") -> str:
    return f"https://{PUBLIC_IP}/hook/{path or uuid.uuid4().hex}"


async def _create(suite: Suite, token: str, **fields: Any) -> dict[str, Any]:
    """new_subscription's, to a public address (these suites refuse private ones)."""
    return await new_subscription(suite, token, **{"url": _url(), **fields})


async def _row(suite: Suite, sub_id: str) -> dict[str, Any]:
    conn = await asyncpg.connect(
        suite.settings.database_url, server_settings={"search_path": "webhook_delivery"}
    )
    try:
        row = await conn.fetchrow("SELECT * FROM subscriptions WHERE id = $1", uuid.UUID(sub_id))
        return dict(row) if row else {}
    finally:
        await conn.close()


async def _execute(suite: Suite, sql: str, *args: Any) -> None:
    conn = await asyncpg.connect(
        suite.settings.database_url, server_settings={"search_path": "webhook_delivery"}
    )
    try:
        await conn.execute(sql, *args)
    finally:
        await conn.close()


@pytest.fixture
async def private_suite(aiohttp_server: Any, settings: Settings) -> AsyncIterator[Suite]:
    """The suite with HERALD_WEBHOOK_ALLOW_PRIVATE on (development and tests of receivers)."""
    started = await start_suite(aiohttp_server, dataclasses.replace(settings, webhook_allow_private=True))
    yield started
    await started.close()


# -- the life of a subscription ---------------------------------------------------------------


async def test_a_member_creates_reads_replaces_patches_and_deletes_a_subscription(suite: Suite) -> None:
    user, _, token = await suite.new_user(["approver"])
    url = _url()
    resp, created = await suite.request(
        "POST",
        "/v2/subscription/list",
        token=token,
        json={"url": url, "topics": ["event.approved", "location.*"], "description": "ops"},
    )
    assert resp.status == 201, created
    sub_id = created["id"]
    assert resp.headers["Location"] == f"/v2/subscription/{sub_id}"
    assert resp.headers["ETag"] == '"1"' and resp.headers["Cache-Control"] == "no-store"
    assert created["secret"].startswith("whsec_")
    assert created["ownerId"] == user["id"] and created["url"] == url and created["version"] == 1
    assert (created["active"], created["headers"], created["disabledReason"]) == (True, {}, None)
    row = await _row(suite, sub_id)
    assert row["owner_roles"] == ["approver"] and row["secret"] == created["secret"]
    assert row["url_key"] == url

    resp, got = await suite.request("GET", f"/v2/subscription/{sub_id}", token=token)
    assert resp.status == 200 and resp.headers["ETag"] == '"1"'
    assert got == {k: v for k, v in created.items() if k != "secret"}, "the secret is shown only on create"

    replaced = {**got, "topics": ["*"], "headers": {"Authorization": "Bearer r"}, "active": False}
    resp, put = await suite.request("PUT", f"/v2/subscription/{sub_id}", token=token, json=replaced)
    assert resp.status == 200, put
    assert (put["topics"], put["headers"], put["active"], put["version"]) == (
        ["*"],
        {"Authorization": "Bearer r"},
        False,
        2,
    )
    assert put["description"] == "ops" and resp.headers["ETag"] == '"2"'

    resp, patched = await suite.request(
        "PATCH", f"/v2/subscription/{sub_id}", token=token, json={"description": None}, headers=MERGE
    )
    assert resp.status == 200, patched
    assert patched["description"] == "" and patched["topics"] == ["*"] and patched["version"] == 3

    resp, same = await suite.request(
        "PATCH", f"/v2/subscription/{sub_id}", token=token, json={"description": ""}, headers=MERGE
    )
    assert resp.status == 200 and same["version"] == 3, "nothing changed: the version stays"

    resp, _ = await suite.request("DELETE", f"/v2/subscription/{sub_id}", token=token)
    assert resp.status == 204
    resp, problem = await suite.request("GET", f"/v2/subscription/{sub_id}", token=token)
    assert resp.status == 404 and problem["status"] == 404
    assert await _row(suite, sub_id) == {}
    resp, _ = await suite.request("DELETE", f"/v2/subscription/{sub_id}", token=token)
    assert resp.status == 404


async def test_put_needs_every_writable_field_and_patch_merges_headers(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    sub = await _create(suite, token, headers={"X-One": "1", "X-Two": "2"})
    path = f"/v2/subscription/{sub['id']}"
    resp, problem = await suite.request("PUT", path, token=token, json={"url": sub["url"], "topics": ["*"]})
    assert resp.status == 422
    assert {e["field"] for e in problem["errors"]} == {"description", "active", "headers"}

    patch = {"headers": {"x-one": None, "X-Three": "3"}}
    resp, patched = await suite.request("PATCH", path, token=token, json=patch, headers=MERGE)
    assert resp.status == 200, patched
    assert patched["headers"] == {"X-Two": "2", "X-Three": "3"}, "names ignore case; null removes"
    resp, patched = await suite.request("PATCH", path, token=token, json={"headers": None}, headers=MERGE)
    assert resp.status == 200 and patched["headers"] == {}

    resp, patched = await suite.request("PATCH", path, token=token, json={"topics": ["event.created"]})
    assert resp.status == 200 and patched["topics"] == ["event.created"], (
        "application/json is a merge patch too"
    )
    resp, problem = await suite.request("PATCH", path, token=token, json={"topics": None}, headers=MERGE)
    assert resp.status == 422 and problem["errors"][0]["field"] == "topics"


async def test_the_list_pages_with_a_link_and_shows_only_the_callers_own(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    _, _, other = await suite.new_user()
    mine = [(await _create(suite, token))["id"] for _ in range(5)]
    theirs = (await _create(suite, other))["id"]

    seen: list[str] = []
    path: str | None = "/v2/subscription/list?limit=2"
    pages = 0
    while path:
        resp, page = await suite.request("GET", path, token=token)
        assert resp.status == 200, page
        assert len(page) <= 2 and all("secret" not in s for s in page)
        seen += [s["id"] for s in page]
        pages += 1
        link = resp.headers.get("Link")
        path = link[link.index("/v2/") : link.index(">")] if link else None
    assert seen == mine and pages == 3, "oldest first, every one once, none of someone else's"

    resp, everyone = await suite.request(
        "GET", "/v2/subscription/list?limit=500", token=await suite.admin_token()
    )
    ids = {s["id"] for s in everyone}
    assert resp.status == 200 and set(mine) <= ids and theirs in ids

    for query, needle in (("?cursor=bm9wZQ", "cursor"), ("?limit=0", "limit"), ("?owner=x", "owner")):
        resp, problem = await suite.request("GET", "/v2/subscription/list" + query, token=token)
        assert resp.status == 400 and needle in problem["detail"], problem


async def test_someone_elses_subscription_is_a_404_and_admins_manage_all(suite: Suite) -> None:
    owner, _, token = await suite.new_user()
    _, _, intruder = await suite.new_user()
    sub = await _create(suite, token, headers={"Authorization": "Bearer secret-of-owner"})
    path = f"/v2/subscription/{sub['id']}"
    attempts: list[tuple[str, str, Any]] = [
        ("GET", path, None),
        ("PUT", path, {k: sub[k] for k in ("url", "topics", "description", "active", "headers")}),
        ("PATCH", path, {"active": False}),
        ("DELETE", path, None),
        ("GET", path + "/secret", None),
        ("POST", path + "/secret/rotate", None),
    ]
    for method, where, body in attempts:
        resp, problem = await suite.request(method, where, token=intruder, json=body)
        assert resp.status == 404, (method, where, problem)
        assert "secret-of-owner" not in str(problem)
    assert (await _row(suite, sub["id"]))["secret"] == sub["secret"], "nothing was changed"

    admin = await suite.admin_token()
    resp, patched = await suite.request("PATCH", path, token=admin, json={"active": False}, headers=MERGE)
    assert resp.status == 200 and patched["active"] is False and patched["ownerId"] == owner["id"]
    resp, secrets = await suite.request("GET", path + "/secret", token=admin)
    assert resp.status == 200 and secrets["secret"] == sub["secret"]
    resp, _ = await suite.request("DELETE", path, token=admin)
    assert resp.status == 204


async def test_every_route_needs_a_token(suite: Suite) -> None:
    some_id = str(uuid.uuid4())
    routes = [
        ("GET", "/v2/subscription/list"),
        ("POST", "/v2/subscription/list"),
        ("GET", f"/v2/subscription/{some_id}"),
        ("PUT", f"/v2/subscription/{some_id}"),
        ("PATCH", f"/v2/subscription/{some_id}"),
        ("DELETE", f"/v2/subscription/{some_id}"),
        ("GET", f"/v2/subscription/{some_id}/secret"),
        ("POST", f"/v2/subscription/{some_id}/secret/rotate"),
        ("GET", "/v2/topic/list"),
    ]
    for method, path in routes:
        for base in (None, suite.settings.webhook_url):  # through the edge and straight to the service
            resp, problem = await suite.request(method, path, json={}, base=base)
            assert resp.status == 401, (method, path, base, problem)
            assert resp.content_type == "application/problem+json"
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")


# -- preconditions ----------------------------------------------------------------------------


async def test_if_match_with_a_stale_etag_is_a_412_and_writes_nothing(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    sub = await _create(suite, token)
    path = f"/v2/subscription/{sub['id']}"
    resp, first = await suite.request(
        "PATCH", path, token=token, json={"description": "v2"}, headers={**MERGE, "If-Match": '"1"'}
    )
    assert resp.status == 200 and first["version"] == 2

    full = {k: first[k] for k in ("url", "topics", "description", "active", "headers")}
    stale = {"If-Match": '"1"'}
    for method, body, headers in (
        ("PUT", {**full, "description": "lost"}, stale),
        ("PATCH", {"description": "lost"}, {**MERGE, **stale}),
        ("DELETE", None, stale),
        ("PATCH", {"description": "lost"}, {**MERGE, "If-Match": 'W/"2"'}),  # weak never matches
    ):
        resp, problem = await suite.request(method, path, token=token, json=body, headers=headers)
        assert resp.status == 412, (method, problem)
        assert problem["status"] == 412 and '"2"' in problem["detail"]
    row = await _row(suite, sub["id"])
    assert (row["description"], row["version"]) == ("v2", 2)

    resp, got = await suite.request("GET", path, token=token, headers={"If-None-Match": '"2"'})
    assert resp.status == 304 and resp.headers["ETag"] == '"2"'
    resp, _ = await suite.request("GET", path, token=token, headers={"If-None-Match": 'W/"2"'})
    assert resp.status == 304, "If-None-Match compares weakly"
    resp, got = await suite.request("GET", path, token=token, headers={"If-None-Match": '"1"'})
    assert resp.status == 200 and got["version"] == 2

    resp, put = await suite.request("PUT", path, token=token, json=full, headers={"If-Match": '"0", "2"'})
    assert resp.status == 200 and put["version"] == 2, "a PUT of the same content changes nothing"
    resp, _ = await suite.request("DELETE", path, token=token, headers={"If-Match": "*"})
    assert resp.status == 204


async def test_concurrent_changes_with_the_same_etag_write_once(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    sub = await _create(suite, token)
    path = f"/v2/subscription/{sub['id']}"

    async def patch(n: int) -> int:
        resp, _ = await suite.request(
            "PATCH",
            path,
            token=token,
            json={"description": f"writer {n}"},
            headers={**MERGE, "If-Match": '"1"'},
        )
        return resp.status

    statuses = await asyncio.gather(*(patch(n) for n in range(8)))
    assert sorted(statuses) == [200] + [412] * 7
    row = await _row(suite, sub["id"])
    assert row["version"] == 2 and row["description"].startswith("writer ")


async def test_concurrent_creates_of_one_url_make_one_subscription(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    body = {"url": _url(), "topics": ["*"]}
    results = await asyncio.gather(
        *(suite.request("POST", "/v2/subscription/list", token=token, json=body) for _ in range(6))
    )
    assert sorted(resp.status for resp, _ in results) == [201] + [409] * 5


# -- bad requests -----------------------------------------------------------------------------


async def test_malformed_requests_are_400_415_or_404(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    sub = await _create(suite, token)
    path = f"/v2/subscription/{sub['id']}"
    cases: list[tuple[str, str, dict[str, Any], int, str]] = [
        (
            "POST",
            "/v2/subscription/list",
            {"data": "not json", "headers": {"Content-Type": "application/json"}},
            400,
            "JSON",
        ),
        ("POST", "/v2/subscription/list", {"json": ["https://x.example/"]}, 400, "object"),
        (
            "POST",
            "/v2/subscription/list",
            {"json": {"url": _url(), "topics": ["*"], "id": sub["id"]}},
            400,
            "read-only",
        ),
        (
            "POST",
            "/v2/subscription/list",
            {"data": "{}", "headers": {"Content-Type": "text/plain"}},
            415,
            "application/json",
        ),
        ("PATCH", path, {"data": "{}", "headers": {"Content-Type": "text/plain"}}, 415, "merge-patch"),
        (
            "PUT",
            path,
            {"data": "{}", "headers": {"Content-Type": "application/merge-patch+json"}},
            415,
            "application/json",
        ),
        ("PATCH", path, {"json": {"ownerId": str(uuid.uuid4())}, "headers": MERGE}, 400, "read-only"),
        ("PATCH", path, {"json": {"version": 7}, "headers": MERGE}, 400, "read-only"),
        ("GET", "/v2/subscription/not-a-uuid", {}, 404, "subscription"),
        (
            "PATCH",
            f"/v2/subscription/{uuid.uuid4()}",
            {"json": {"active": True}, "headers": MERGE},
            404,
            "subscription",
        ),
    ]
    for method, where, kwargs, status, needle in cases:
        resp, problem = await suite.request(method, where, token=token, **kwargs)
        assert resp.status == status, (method, where, problem)
        assert resp.content_type == "application/problem+json" and needle in problem["detail"], problem
    resp, same = await suite.request(
        "PATCH", path, token=token, json={"version": 1, "id": sub["id"]}, headers=MERGE
    )
    assert resp.status == 200 and same["version"] == 1, "unchanged read-only fields round-trip"
    assert (await _row(suite, sub["id"]))["version"] == 1


@pytest.mark.parametrize(
    ("topics", "named"),
    [
        (["event.approve"], "event.approve"),
        (["event.approved", "nope"], "nope"),
        (["evnt.*"], "evnt.*"),
        (["event.*.x"], "event.*.x"),
        (["event*"], "event*"),
        (["**"], "**"),
        (["Event.approved"], "Event.approved"),
    ],
)
async def test_unknown_topics_are_a_422_that_names_them(suite: Suite, topics: list[str], named: str) -> None:
    _, _, token = await suite.new_user()
    resp, problem = await suite.request(
        "POST", "/v2/subscription/list", token=token, json={"url": _url(), "topics": topics}
    )
    assert resp.status == 422, problem
    assert problem["errors"][0]["field"] == "topics" and repr(named) in problem["detail"]


async def test_topic_lists_are_checked_on_change_too(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    sub = await _create(suite, token)
    path = f"/v2/subscription/{sub['id']}"
    for body in ({"topics": []}, {"topics": ["*", "*"]}, {"topics": ["webhook.nope"]}, {"topics": "event.*"}):
        resp, problem = await suite.request("PATCH", path, token=token, json=body, headers=MERGE)
        assert resp.status == 422 and problem["errors"][0]["field"] == "topics", (body, problem)
    for good in (["*"], ["webhook.*", "location.deleted"], list(TOPICS)):
        resp, patched = await suite.request("PATCH", path, token=token, json={"topics": good}, headers=MERGE)
        assert resp.status == 200 and patched["topics"] == good


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({"webhook-id": "x"}, "headers.webhook-id"),
        ({"Webhook-Signature": "v1,x"}, "headers.Webhook-Signature"),
        ({"Content-Type": "text/plain"}, "headers.Content-Type"),
        ({"content-length": "1"}, "headers.content-length"),
        ({"Host": "internal.example"}, "headers.Host"),
        ({"User-Agent": "me"}, "headers.User-Agent"),
        ({"Connection": "close"}, "headers.Connection"),
        ({"Transfer-Encoding": "chunked"}, "headers.Transfer-Encoding"),
        ({"Upgrade": "h2c"}, "headers.Upgrade"),
        ({"Proxy-Authorization": "x"}, "headers.Proxy-Authorization"),
        ({"X-Evil": "a\r\nHost: b"}, "headers.X-Evil"),
        ({"X-Evil": "a\nb"}, "headers.X-Evil"),
        ({"X Bad": "a"}, "headers.X Bad"),
        ({"": "a"}, "headers."),
        ({"X-A": "1", "x-a": "2"}, "headers.x-a"),
        ({f"X-H{i}": "v" for i in range(21)}, "headers"),
        ({"X-A": 1}, "headers.X-A"),
    ],
)
async def test_reserved_or_malformed_headers_are_a_422(
    suite: Suite, headers: dict[str, Any], field: str
) -> None:
    _, _, token = await suite.new_user()
    resp, problem = await suite.request(
        "POST",
        "/v2/subscription/list",
        token=token,
        json={"url": _url(), "topics": ["*"], "headers": headers},
    )
    assert resp.status == 422, problem
    assert problem["errors"][0]["field"] == field
    assert "\r\n" not in problem["detail"]


async def test_authorization_and_custom_headers_are_allowed(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    headers = {"Authorization": "Bearer abc", "X-Tenant": "t-1", "X-Empty": ""}
    sub = await _create(suite, token, headers=headers)
    assert sub["headers"] == headers
    assert json.loads((await _row(suite, sub["id"]))["headers"]) == headers


# -- filters ----------------------------------------------------------------------------------

FILTER = {"data.locationId": "loc-1", "data.capacity": {"gte": 50}}


async def test_a_filter_is_stored_shown_replaced_whole_by_patch_and_cleared(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    plain = await _create(suite, token)
    assert plain["filter"] is None and (await _row(suite, plain["id"]))["filter"] is None
    sub = await _create(suite, token, filter=FILTER)
    assert sub["filter"] == FILTER
    assert json.loads((await _row(suite, sub["id"]))["filter"]) == FILTER
    path = f"/v2/subscription/{sub['id']}"

    # Merge patch replaces the filter whole: the keys of the old one are not kept.
    other = {"$or": [{"type": "event.approved"}, {"data.tags": "public"}]}
    resp, patched = await suite.request("PATCH", path, token=token, json={"filter": other}, headers=MERGE)
    assert resp.status == 200 and patched["filter"] == other and patched["version"] == 2, patched
    # The same filter again, keys in another order: not a change.
    same = {"$or": [{"type": "event.approved"}, {"data.tags": "public"}]}
    resp, patched = await suite.request("PATCH", path, token=token, json={"filter": same}, headers=MERGE)
    assert resp.status == 200 and patched["version"] == 2, patched
    # A patch without `filter` keeps it; `1` to `true` is a change (Python's == would say no).
    resp, patched = await suite.request(
        "PATCH", path, token=token, json={"filter": {"data.public": 1}}, headers=MERGE
    )
    assert resp.status == 200 and patched["version"] == 3
    resp, patched = await suite.request(
        "PATCH", path, token=token, json={"filter": {"data.public": True}}, headers=MERGE
    )
    assert resp.status == 200 and patched["filter"] == {"data.public": True} and patched["version"] == 4
    resp, patched = await suite.request("PATCH", path, token=token, json={"description": "x"}, headers=MERGE)
    assert resp.status == 200 and patched["filter"] == {"data.public": True}

    resp, patched = await suite.request("PATCH", path, token=token, json={"filter": None}, headers=MERGE)
    assert resp.status == 200 and patched["filter"] is None, patched
    assert (await _row(suite, sub["id"]))["filter"] is None, "SQL NULL, not a JSON null"

    # PUT replaces every writable field: with a filter, then without one (none).
    resp, put = await suite.request("PUT", path, token=token, json={**patched, "filter": FILTER})
    assert resp.status == 200 and put["filter"] == FILTER, put
    del put["filter"]
    resp, put = await suite.request("PUT", path, token=token, json=put)
    assert resp.status == 200 and put["filter"] is None, put


@pytest.mark.parametrize(
    ("filter_", "field", "words"),
    [
        ({"data.capacity": {"gt": True}}, "filter.data.capacity.gt", "needs a number or a string"),
        ({"data.capacity": {"above": 3}}, "filter.data.capacity.above", "unknown operator"),
        ({"data.venue": {"floor": 2, "room": "A"}}, "filter.data.venue", '{"eq": {...}}'),
        ({"$or": []}, "filter.$or", "non-empty array of filters"),
        ({"capacity": 3}, "filter.capacity", "starts with one of"),
        ({"$or": [{"data.x": i} for i in range(60)]}, "filter", "at most 50 are allowed"),
        ({"data.x": {"in": ["y" * 500] * 10}}, "filter", "at most 4096 are allowed"),
        ({"$not": {"$not": {"$not": {"$not": {"$not": {"type": "x"}}}}}}, "filter" + ".$not" * 5, "5 deep"),
        ("type", "filter", "object"),
    ],
)
async def test_a_bad_filter_is_a_422_naming_its_place(
    suite: Suite, filter_: Any, field: str, words: str
) -> None:
    _, _, token = await suite.new_user()
    resp, problem = await suite.request(
        "POST", "/v2/subscription/list", token=token, json={"url": _url(), "topics": ["*"], "filter": filter_}
    )
    assert resp.status == 422, problem
    assert resp.content_type == "application/problem+json"
    assert problem["errors"][0]["field"] == field and words in problem["errors"][0]["message"], problem
    assert field in problem["detail"]


async def test_filters_are_checked_on_change_too(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    sub = await _create(suite, token, filter=FILTER)
    path = f"/v2/subscription/{sub['id']}"
    bad = {"data.capacity": {"exists": "yes"}}
    resp, problem = await suite.request("PATCH", path, token=token, json={"filter": bad}, headers=MERGE)
    assert resp.status == 422 and problem["errors"][0]["field"] == "filter.data.capacity.exists", problem
    shown = {k: v for k, v in sub.items() if k != "secret"}
    resp, problem = await suite.request("PUT", path, token=token, json={**shown, "filter": bad})
    assert resp.status == 422 and problem["errors"][0]["field"] == "filter.data.capacity.exists", problem
    resp, got = await suite.request("GET", path, token=token)
    assert got["filter"] == FILTER and got["version"] == 1


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("ftp://93.184.215.14/hook", "http or https"),
        ("javascript:alert(1)", "http or https"),
        ("https:///hook", "host"),
        ("https://user:pw@93.184.215.14/hook", "user name or password"),
        ("https://93.184.215.14:0/hook", "port"),
        ("https://93.184.215.14:99999/hook", "malformed"),
        ("https://no-such-host.invalid/hook", "does not resolve"),
        ("http://127.0.0.1:8080/hook", "resolves to 127.0.0.1"),
    ],
)
async def test_bad_urls_are_a_422_with_the_reason(suite: Suite, url: str, needle: str) -> None:
    _, _, token = await suite.new_user()
    resp, problem = await suite.request(
        "POST", "/v2/subscription/list", token=token, json={"url": url, "topics": ["*"]}
    )
    assert resp.status == 422, problem
    assert problem["errors"][0]["field"] == "url" and needle in problem["detail"], problem


SSRF_MATRIX = [
    "http://127.0.0.1:9/hook",
    "http://10.0.0.1/hook",
    "http://172.16.0.1/hook",
    "http://192.168.1.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/hook",
    "http://[::1]:9/hook",
    "http://[fc00::1]/hook",
    "http://[fe80::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://localhost:9/hook",
]


async def test_private_targets_are_refused_at_save_time(suite: Suite) -> None:
    assert suite.settings.webhook_allow_private is False
    _, _, token = await suite.new_user()
    sub = await _create(suite, token)
    for url in SSRF_MATRIX:
        resp, problem = await suite.request(
            "POST", "/v2/subscription/list", token=token, json={"url": url, "topics": ["*"]}
        )
        assert resp.status == 422, (url, problem)
        assert "resolves to" in problem["detail"] and problem["errors"][0]["field"] == "url"
        resp, problem = await suite.request(
            "PATCH", f"/v2/subscription/{sub['id']}", token=token, json={"url": url}, headers=MERGE
        )
        assert resp.status == 422, (url, problem)
    assert (await _row(suite, sub["id"]))["url"] == sub["url"], "no refused URL was written"


async def test_private_targets_are_allowed_when_the_setting_says_so(private_suite: Suite) -> None:
    _, _, token = await private_suite.new_user()
    for url in SSRF_MATRIX:
        resp, sub = await private_suite.request(
            "POST", "/v2/subscription/list", token=token, json={"url": url, "topics": ["*"]}
        )
        assert resp.status == 201, (url, sub)
        assert sub["url"] == url


# -- one subscription per owner and URL ------------------------------------------------------


async def test_the_same_normalized_url_twice_is_a_409(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    _, _, other = await suite.new_user()
    path = uuid.uuid4().hex
    first = await _create(suite, token, url=f"https://{PUBLIC_IP}/hook/{path}")
    for variant in (
        f"HTTPS://{PUBLIC_IP}:443/hook/{path}",
        f"https://{PUBLIC_IP}/hook/{path}#fragment",
    ):
        resp, problem = await suite.request(
            "POST", "/v2/subscription/list", token=token, json={"url": variant, "topics": ["*"]}
        )
        assert resp.status == 409, (variant, problem)
        assert "already" in problem["detail"]
    # Another owner may use the same URL; the same owner another path or port.
    await _create(suite, other, url=first["url"])
    second = await _create(suite, token, url=f"https://{PUBLIC_IP}:8443/hook/{path}")
    resp, problem = await suite.request(
        "PATCH",
        f"/v2/subscription/{second['id']}",
        token=token,
        json={"url": f"https://{PUBLIC_IP}/hook/{path}/"[:-1]},
        headers=MERGE,
    )
    assert resp.status == 409, problem
    assert (await _row(suite, second["id"]))["version"] == 1


# -- re-enabling -----------------------------------------------------------------------------


async def test_reenabling_clears_the_reason_and_the_failure_run(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    sub = await _create(suite, token)
    # What the delivery worker does on a 410 or after days of failures.
    await _execute(
        suite,
        "UPDATE subscriptions SET active = false, disabled_reason = 'receiver answered 410 Gone',"
        " failing_since = now() - interval '1 day', version = version + 1 WHERE id = $1",
        uuid.UUID(sub["id"]),
    )
    path = f"/v2/subscription/{sub['id']}"
    resp, got = await suite.request("GET", path, token=token)
    assert got["active"] is False and got["disabledReason"] == "receiver answered 410 Gone"
    resp, patched = await suite.request("PATCH", path, token=token, json={"active": True}, headers=MERGE)
    assert resp.status == 200 and patched["active"] is True and patched["disabledReason"] is None
    row = await _row(suite, sub["id"])
    assert row["failing_since"] is None and row["disabled_reason"] is None


# -- secrets ---------------------------------------------------------------------------------


async def test_rotation_keeps_the_old_secret_signing_for_the_overlap(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    sub = await _create(suite, token)
    path = f"/v2/subscription/{sub['id']}/secret"
    resp, secrets = await suite.request("GET", path, token=token)
    assert resp.status == 200 and secrets == {"secret": sub["secret"]}
    assert resp.headers["Cache-Control"] == "no-store"

    resp, rotated = await suite.request("POST", path + "/rotate", token=token)
    assert resp.status == 200, rotated
    assert rotated["secret"] != sub["secret"] and rotated["secret"].startswith("whsec_")
    assert rotated["previousSecret"] == sub["secret"]
    expires = datetime.fromisoformat(rotated["previousSecretExpiresAt"])
    overlap = timedelta(seconds=suite.settings.webhook_secret_overlap)
    assert abs(expires - (datetime.now(UTC) + overlap)) < timedelta(minutes=1)
    resp, again = await suite.request("GET", path, token=token)
    assert again == rotated
    row = await _row(suite, sub["id"])
    assert (row["secret"], row["previous_secret"], row["version"]) == (rotated["secret"], sub["secret"], 1)

    await _execute(
        suite,
        "UPDATE subscriptions SET previous_secret_until = now() - interval '1 second' WHERE id = $1",
        uuid.UUID(sub["id"]),
    )
    resp, expired = await suite.request("GET", path, token=token)
    assert expired == {"secret": rotated["secret"]}, "an expired previous secret is not shown"


# -- the topic catalog and the OpenAPI fragment ----------------------------------------------


async def test_the_topic_list_is_the_catalog_with_each_payload_schema(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    resp, topics = await suite.request("GET", "/v2/topic/list", token=token)
    assert resp.status == 200
    assert [t["name"] for t in topics] == list(TOPICS)
    for topic in topics:
        assert topic["description"] == TOPICS[topic["name"]][0]
        assert topic["schema"] == envelope_schema(topic["name"])


async def test_the_openapi_fragment_covers_every_route_and_needs_no_token(
    suite: Suite, settings: Settings
) -> None:
    resp, doc = await suite.request("GET", "/openapi.json", base=suite.settings.webhook_url)
    assert resp.status == 200, doc
    assert doc["openapi"] == "3.1.0" and doc["info"]["version"] == "2"
    routes = {
        (route.method.lower(), route.resource.canonical)
        for route in webhook_app(settings).router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith("/v2/")
        and route.method not in ("HEAD", "OPTIONS")
    }
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert routes and routes <= documented
    schemas = doc["components"]["schemas"]
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            assert {"operationId", "summary", "tags", "parameters", "responses"} <= op.keys(), (path, method)
            if method in ("put", "patch") or op["operationId"] == "createSubscription":
                assert "requestBody" in op
            statuses = [int(s) for s in op["responses"]]
            assert any(200 <= s < 300 for s in statuses)
            for status, response in op["responses"].items():
                if int(status) >= 400:
                    assert response == {"$ref": f"#/components/responses/Problem{status}"}
            for ref in _refs(op):
                if ref.startswith("#/components/schemas/"):
                    assert ref.removeprefix("#/components/schemas/") in schemas
    assert all(name.startswith(("Subscription", "Topic")) for name in schemas)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []

"""The resource engine is generic: a type declared here, and nowhere in the service, gets CRUD,
lists, validation, its OpenAPI paths and its events with no handler code of its own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.resource.openapi import fragment
from services.resource.types import TYPES, ResourceType
from shared.catalog import EVENT, LOCATION
from shared.config import Settings
from shared.web.paging import encode_cursor
from tests.conftest import Suite, start_suite


def _declared(title: str, fields: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """A resource type's schema: its own `fields` between the id and those the service keeps."""
    kept = {
        "ownerId": {"type": "string", "format": "uuid", "readOnly": True},
        "createdAt": {"type": "string", "format": "date-time", "readOnly": True},
        "updatedAt": {"type": "string", "format": "date-time", "readOnly": True},
        "version": {"type": "integer", "readOnly": True},
    }
    properties = {"id": {"type": "string", "format": "uuid", "readOnly": True}, **fields, **kept}
    return {"title": title, "type": "object", "properties": properties, "required": required}


BOOK = ResourceType(
    name="book",
    schema=_declared(
        "Book",
        {
            "title": {"type": "string", "minLength": 1, "maxLength": 100},
            "pages": {"type": ["integer", "null"], "minimum": 1},
            "publishedAt": {"type": "string", "format": "date-time"},
        },
        ["title", "publishedAt"],
    ),
    filters=("title", "pages", "publishedAt"),
    sorts=("title", "publishedAt", "createdAt"),
    default_sort="title",
    search=("title",),
)


@pytest.fixture
async def book_suite(aiohttp_server: Any, settings: Settings) -> AsyncIterator[Suite]:
    started = await start_suite(aiohttp_server, settings, resource_types=(*TYPES, BOOK))
    yield started
    await started.close()


async def test_a_type_declared_only_here_gets_the_whole_api(book_suite: Suite) -> None:
    suite = book_suite
    _, _, token = await suite.new_user()
    _, _, other = await suite.new_user()
    resp, book = await suite.request(
        "POST",
        "/v2/book/list",
        token=token,
        json={"title": "Dune", "pages": 412, "publishedAt": "1965-08-01T00:00:00Z"},
    )
    assert resp.status == 201, book
    assert (
        book["publishedAt"] == "1965-08-01T00:00:00.000Z"
        and resp.headers["Location"] == f"/v2/book/{book['id']}"
    )
    resp, problem = await suite.request(
        "POST", "/v2/book/list", token=token, json={"title": "No date", "pages": 0}
    )
    assert resp.status == 422 and {e["field"] for e in problem["errors"]} == {"pages", "publishedAt"}
    resp, body = await suite.request("GET", "/v2/book/list?pages[gte]=400&q=dune", token=other)
    assert resp.status == 200 and book["id"] in [b["id"] for b in body]
    resp, body = await suite.request("PATCH", f"/v2/book/{book['id']}", token=token, json={"pages": None})
    assert resp.status == 200 and body["pages"] is None and body["version"] == 2
    resp, _ = await suite.request("PATCH", f"/v2/book/{book['id']}", token=other, json={"pages": 3})
    assert resp.status == 403  # visible to all (no workflow), changed only by its owner
    resp, _ = await suite.request("POST", f"/v2/book/{book['id']}/submit", token=token)
    assert resp.status in (404, 405)  # no workflow, no transitions
    resp, _ = await suite.request("DELETE", f"/v2/book/{book['id']}", token=token)
    assert resp.status == 204


def test_the_openapi_fragment_documents_every_declared_route() -> None:
    document = fragment((*TYPES, BOOK))
    assert {"/v2/book/list", "/v2/book/{id}"} <= set(document["paths"])
    assert "/v2/book/{id}/history" not in document["paths"]
    assert {"/v2/event/{id}/approve", "/v2/event/{id}/history"} <= set(document["paths"])
    assert {"Book", "BookInput", "BookPatch", "Event", "EventInput", "Location"} <= set(
        document["components"]["schemas"]
    )
    params = {p["name"] for p in document["paths"]["/v2/event/list"]["get"]["parameters"]}
    assert {"startsAt[gte]", "tags[in]", "q", "sort", "cursor", "count"} <= params


def test_declarations_use_the_catalog_representations() -> None:
    """The webhook catalog and the API show the same thing for each product type."""
    assert {t.name: t.schema for t in TYPES} == {"event": EVENT, "location": LOCATION}


def test_a_declaration_that_cannot_work_fails_at_once() -> None:
    with pytest.raises(ValueError, match="may be null"):
        ResourceType(
            name="bad", schema=BOOK.schema, filters=(), sorts=("pages",), default_sort="pages"
        ).validate_declaration()
    with pytest.raises(ValueError, match="not a field"):
        ResourceType(
            name="bad", schema=BOOK.schema, filters=("colour",), sorts=("title",), default_sort="title"
        ).validate_declaration()


RANKED = ResourceType(
    name="ranked",
    schema=_declared(
        "Ranked",
        {"label": {"type": "string", "minLength": 1, "maxLength": 100}, "rank": {"type": "integer"}},
        ["label", "rank"],
    ),
    filters=("label", "rank"),
    sorts=("rank", "label", "createdAt"),
    default_sort="rank",
)


@pytest.fixture
async def ranked_suite(aiohttp_server: Any, settings: Settings) -> AsyncIterator[Suite]:
    started = await start_suite(aiohttp_server, settings, resource_types=(*TYPES, RANKED))
    yield started
    await started.close()


async def _pages(suite: Suite, token: str, path: str, most: int = 20) -> list[dict[str, Any]]:
    """Every item of every page (at most `most` pages: a cursor that loops fails the test)."""
    seen: list[dict[str, Any]] = []
    for _ in range(most):
        resp, body = await suite.request("GET", path, token=token)
        assert resp.status == 200, body
        seen += body
        link = resp.headers.get("Link")
        if not link:
            return seen
        path = link[link.index("<") + 1 : link.index(">")]
    raise AssertionError(f"more than {most} pages: the cursor does not move on ({len(seen)} items seen)")


async def test_cursors_keep_numbers_numbers(ranked_suite: Suite) -> None:
    """A numeric sort key goes into the cursor as a number: as text, "10" < "9" and pages would
    repeat or skip."""
    suite = ranked_suite
    _, _, token = await suite.new_user()
    label = "r" + uuid.uuid4().hex[:8]
    ranks = [100, 9, 10, 1000, 2, 10, 99, 11, -5, 0]
    resp, made = await suite.request(
        "POST", "/v2/ranked/list", token=token, json=[{"label": label, "rank": r} for r in ranks]
    )
    assert resp.status == 201, made
    by_rank = sorted(made, key=lambda item: (item["rank"], item["id"]))
    seen = await _pages(suite, token, f"/v2/ranked/list?label={label}&sort=rank&limit=3")
    assert [item["id"] for item in seen] == [item["id"] for item in by_rank]
    seen = await _pages(suite, token, f"/v2/ranked/list?label={label}&sort=-rank&limit=2")
    assert [item["id"] for item in seen] == [item["id"] for item in reversed(by_rank)]
    # Mixed directions: the expanded keyset form, numbers still numbers.
    seen = await _pages(suite, token, f"/v2/ranked/list?label={label}&sort=-rank,createdAt&limit=4")
    assert [item["rank"] for item in seen] == sorted(ranks, reverse=True)
    assert len({item["id"] for item in seen}) == len(ranks)


async def test_a_tampered_cursor_is_400(ranked_suite: Suite) -> None:
    suite = ranked_suite
    _, _, token = await suite.new_user()
    some_id = str(uuid.uuid4())
    tampered = [
        ["10", some_id],  # a number's key as text
        [True, some_id],
        [1.5, some_id],
        [None, some_id],
        [{"a": 1}, some_id],
        [[1], some_id],
        [10, "not-a-uuid"],
        [10, 7],
        [10],
        "not a list",
    ]
    for values in tampered:
        resp, problem = await suite.request(
            "GET", f"/v2/ranked/list?sort=rank&cursor={encode_cursor(values)}", token=token
        )
        assert resp.status == 400, (values, problem)
        assert "cursor" in problem["detail"]
    for values in (["not a time", some_id], [12, some_id], ["2027-01-01T00:00:00", some_id]):
        resp, problem = await suite.request(
            "GET", f"/v2/ranked/list?sort=createdAt&cursor={encode_cursor(values)}", token=token
        )
        assert resp.status == 400, (values, problem)
    resp, problem = await suite.request(
        "GET", f"/v2/event/list?sort=title&cursor={encode_cursor([3, some_id])}", token=token
    )
    assert resp.status == 400, problem

"""List queries: filters and operators, text search, sort, projection, keyset pages, counts,
and the 400s that name what was wrong. Each test scopes its rows with a tag of its own (the
test database is shared by the whole session)."""

from __future__ import annotations

import uuid
from typing import Any

from tests.conftest import Suite
from tests.factories import EVENT, create


async def seed(suite: Suite, token: str, count: int) -> tuple[str, list[dict[str, Any]]]:
    tag = "t" + uuid.uuid4().hex[:12]
    batch = [
        {
            **EVENT,
            "title": f"Event number {i}" + (" with fireworks" if i % 3 == 0 else ""),
            "startsAt": f"2027-05-{i + 1:02d}T10:00:00Z",
            "endsAt": f"2027-05-{i + 1:02d}T12:00:00Z",
            "capacity": i * 10,
            "tags": [tag, "even" if i % 2 == 0 else "odd"],
        }
        for i in range(count)
    ]
    resp, body = await create(suite, token, "event", batch)
    assert resp.status == 201, body
    return tag, body


async def listing(suite: Suite, token: str, query: str) -> tuple[Any, Any]:
    return await suite.request("GET", f"/v2/event/list?{query}", token=token)


async def test_filters_and_operators(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    tag, events = await seed(suite, token, 12)
    resp, body = await listing(
        suite, token, f"tags={tag}&startsAt[gte]=2027-05-03T10:00:00Z&startsAt[lt]=2027-05-06T00:00:00Z"
    )
    assert resp.status == 200, body
    assert [e["title"] for e in body] == ["Event number 2", "Event number 3 with fireworks", "Event number 4"]
    resp, body = await listing(suite, token, f"tags={tag}&capacity[gt]=90")
    assert [e["capacity"] for e in body] == [100, 110]
    resp, body = await listing(suite, token, f"tags={tag}&capacity[lte]=10&status=draft")
    assert [e["capacity"] for e in body] == [0, 10]
    ids = f"{events[1]['id']},{events[5]['id']}"
    resp, body = await listing(suite, token, f"tags={tag}&id[in]={ids}")
    assert {e["id"] for e in body} == {events[1]["id"], events[5]["id"]}
    resp, body = await listing(suite, token, f"tags[in]={tag},nothing-else&tags=odd&count=exact")
    assert resp.headers["X-Total-Count"] == "6" and all("odd" in e["tags"] for e in body)
    # Times in another offset mean the same instant.
    resp, body = await listing(suite, token, f"tags={tag}&startsAt=2027-05-02T12:00:00%2B02:00")
    assert [e["title"] for e in body] == ["Event number 1"]


async def test_text_search(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    tag, _ = await seed(suite, token, 7)
    resp, body = await listing(suite, token, f"tags={tag}&q=fireworks")
    assert resp.status == 200
    assert [e["title"] for e in body] == [
        "Event number 0 with fireworks",
        "Event number 3 with fireworks",
        "Event number 6 with fireworks",
    ]
    resp, body = await listing(suite, token, f"tags={tag}&q=fireworks -number")
    assert body == []


async def test_sort_fields_and_keyset_pages_visit_every_row_once(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    tag, events = await seed(suite, token, 11)
    seen: list[str] = []
    path = f"/v2/event/list?tags={tag}&sort=-startsAt&limit=4&fields=id,startsAt&count=exact"
    pages = 0
    while path:
        resp, body = await suite.request("GET", path, token=token)
        assert resp.status == 200, body
        assert all(set(item) == {"id", "startsAt"} for item in body)
        assert resp.headers["X-Total-Count"] == "11"  # every page counts every match
        seen += [item["id"] for item in body]
        pages += 1
        link = resp.headers.get("Link")
        path = link[link.index("<") + 1 : link.index(">")] if link else ""
    assert pages == 3
    expected = [e["id"] for e in sorted(events, key=lambda e: e["startsAt"], reverse=True)]
    assert seen == expected
    # Mixed directions page correctly too (equal titles fall back to id).
    resp, first = await listing(suite, token, f"tags={tag}&sort=capacity")
    assert resp.status == 400 and "capacity" in first["detail"]
    seen = []
    path = f"/v2/event/list?tags={tag}&sort=title,-createdAt&limit=5"
    while path:
        resp, body = await suite.request("GET", path, token=token)
        seen += [item["title"] for item in body]
        link = resp.headers.get("Link")
        path = link[link.index("<") + 1 : link.index(">")] if link else ""
    assert seen == sorted(e["title"] for e in events)


async def test_unknown_parameters_fields_and_operators_are_400_naming_them(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    cases = {
        "colour=red": "colour",
        "title[like]=x": "like",
        "sort=colour": "colour",
        "fields=id,colour": "colour",
        "limit=501": "limit",
        "limit=0": "limit",
        "count=maybe": "count",
        "cursor=garbage!": "cursor",
        "startsAt[gte]=yesterday": "startsAt",
        "capacity[gt]=many": "capacity",
        "status=archived": "status",
        "tags[gt]=a": "tags",
        "description=x": "description",
        "id=not-a-uuid": "id",
    }
    for query, named in cases.items():
        resp, problem = await listing(suite, token, query)
        assert resp.status == 400, (query, problem)
        assert named in problem["detail"], (query, problem["detail"])


async def test_locations_list_by_name_and_default_limit(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    prefix = uuid.uuid4().hex[:8]
    names = [f"{prefix} hall {c}" for c in "cab"]
    resp, _ = await create(suite, token, "location", [{"name": n, "timezone": "UTC"} for n in names])
    assert resp.status == 201
    resp, body = await suite.request("GET", f"/v2/location/list?q={prefix}", token=token)
    assert [loc["name"] for loc in body] == sorted(names)


async def test_a_status_filter_shows_a_member_only_what_they_may_see(suite: Suite) -> None:
    """Filtering on hidden states shows a member their own rows only; on public ones, everyone's;
    on both, their own hidden ones and everyone's public ones (counts agree)."""
    _, _, mine = await suite.new_user()
    _, _, theirs = await suite.new_user()
    _, _, approver = await suite.new_user(["approver"])
    tag = "v" + uuid.uuid4().hex[:10]
    ids: dict[str, str] = {}
    for who, token in (("mine", mine), ("theirs", theirs)):
        for state in ("draft", "pending", "approved"):
            resp, event = await create(
                suite, token, "event", {**EVENT, "title": f"{who} {state}", "tags": [tag]}
            )
            assert resp.status == 201, event
            if state != "draft":
                await suite.request("POST", f"/v2/event/{event['id']}/submit", token=token)
            if state == "approved":
                await suite.request("POST", f"/v2/event/{event['id']}/approve", token=approver)
            ids[f"{who} {state}"] = event["id"]
    cases = {
        "status=draft": {"mine draft"},
        "status[in]=draft,pending": {"mine draft", "mine pending"},
        "status=approved": {"mine approved", "theirs approved"},
        "status[in]=pending,approved": {"mine pending", "mine approved", "theirs approved"},
        "status[in]=draft,pending&status=pending": {"mine pending"},
        "": {"mine draft", "mine pending", "mine approved", "theirs approved"},
    }
    for query, expected in cases.items():
        resp, body = await listing(suite, mine, f"tags={tag}&count=exact&{query}")
        assert resp.status == 200, (query, body)
        assert {e["title"] for e in body} == expected, query
        assert resp.headers["X-Total-Count"] == str(len(expected)), query
    resp, body = await listing(suite, approver, f"tags={tag}&status=draft")
    assert {e["title"] for e in body} == {"mine draft", "theirs draft"}

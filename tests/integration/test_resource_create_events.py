"""A create writes its rows and their events in one statement (no transaction round trips when
there is nothing to check first): what it answers, what GET shows and what the event carries
are the same resource, in both the one-statement and the checked (reference, Idempotency-Key)
ways, single and batched."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from tests.conftest import Suite
from tests.factories import EVENT, create, new_location
from tests.integration.test_resource_events import collect, domain_queue, events_of

__all__ = ["domain_queue"]  # the fixture, used by name


async def _same_everywhere(suite: Suite, token: str, answered: dict[str, Any], queue: Any) -> None:
    resp, shown = await suite.request("GET", f"/v2/event/{answered['id']}", token=token)
    assert resp.status == 200
    assert shown == answered
    messages = await collect(queue, lambda got: bool(events_of(got, answered["id"])))
    (event,) = events_of(messages, answered["id"])
    assert event["type"] == "event.created"
    assert event["data"] == answered
    assert answered["createdAt"] == answered["updatedAt"]


@pytest.mark.parametrize("way", ["plain", "with a reference", "with an Idempotency-Key"])
async def test_answer_get_and_event_agree(suite: Suite, domain_queue: Any, way: str) -> None:
    _, _, token = await suite.new_user()
    body: dict[str, Any] = dict(EVENT)
    headers: dict[str, str] = {}
    if way == "with a reference":
        body["locationId"] = (await new_location(suite, token))["id"]
    elif way == "with an Idempotency-Key":
        headers["Idempotency-Key"] = f"create-{way}-{token[-12:]}"
    resp, answered = await create(suite, token, "event", body, **headers)
    assert resp.status == 201, answered
    await _same_everywhere(suite, token, answered, domain_queue)


async def test_a_batch_agrees_item_by_item(suite: Suite, domain_queue: Any) -> None:
    _, _, token = await suite.new_user()
    resp, answered = await create(suite, token, "event", [{**EVENT, "title": f"B{i}"} for i in range(3)])
    assert resp.status == 201, answered
    assert [item["title"] for item in answered] == ["B0", "B1", "B2"]
    for item in answered:
        await _same_everywhere(suite, token, item, domain_queue)


async def test_concurrent_creates_share_statements_and_each_gets_its_own(
    suite: Suite, domain_queue: Any
) -> None:
    """Creates that arrive while others are written go to PostgreSQL together (CreateBatcher):
    each still answers its own resource, and each one's event carries it."""
    import asyncio

    users = [await suite.new_user() for _ in range(3)]
    bodies = [({**EVENT, "title": f"C{i}"}, users[i % 3][2]) for i in range(24)]
    results = await asyncio.gather(*(create(suite, token, "event", body) for body, token in bodies))
    for (body, _), (resp, answered) in zip(bodies, results, strict=True):
        assert resp.status == 201, answered
        assert answered["title"] == body["title"]
    answers = [answered for _, answered in results]
    messages = await collect(domain_queue, lambda got: all(events_of(got, a["id"]) for a in answers))
    for (_, token), answered in zip(bodies, answers, strict=True):
        resp, shown = await suite.request("GET", f"/v2/event/{answered['id']}", token=token)
        assert resp.status == 200
        assert shown == answered
        (event,) = events_of(messages, answered["id"])
        assert event["type"] == "event.created"
        assert event["data"] == answered


async def test_a_create_that_fails_a_shared_statement_fails_alone(
    fresh_database_url: str,
) -> None:
    import asyncio
    import uuid

    from services.resource.app import MIGRATIONS, SCHEMA
    from services.resource.repo import CreateBatcher, new_rows
    from services.resource.types import TYPES
    from shared.db import Database, ensure_database
    from shared.events import make_event
    from shared.migrations import apply_migrations

    await ensure_database(fresh_database_url)
    await apply_migrations(fresh_database_url, SCHEMA, MIGRATIONS)
    db = await Database.connect(fresh_database_url, SCHEMA, 4)
    try:
        (location,) = [t for t in TYPES if t.name == "location"]
        batcher = CreateBatcher(location, db, None)
        owner = uuid.uuid4()

        def one(name: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            rows = new_rows(location, owner, None, [{"name": name, "timezone": "UTC"}])
            return rows, [make_event("location.created", {"name": name}, str(owner))]

        first = one("first")
        await batcher.insert(*first)
        duplicate = ([{**first[0][0], "doc": {"name": "again"}}], one("again")[1])
        outcomes = await asyncio.gather(
            batcher.insert(*one("a")),  # all four arrive before the write starts: one statement
            batcher.insert(*one("b")),
            batcher.insert(*duplicate),
            batcher.insert(*one("c")),
            return_exceptions=True,
        )
        # The shared statement failed for one of them: each was then written on its own, so
        # only that one fails, with nothing of it written, and the others are created.
        assert outcomes[:2] == [None, None] and outcomes[3] is None, outcomes
        assert isinstance(outcomes[2], asyncpg.UniqueViolationError), outcomes
        await batcher.insert(*one("later"))  # the next statement is not affected
        async with db.connection() as conn:
            names = await conn.fetch("SELECT doc->>'name' AS n FROM resources ORDER BY n")
            topics = await conn.fetchval("SELECT count(*) FROM outbox")
        assert [r["n"] for r in names] == ["a", "b", "c", "first", "later"]
        assert topics == 5
    finally:
        await db.close()

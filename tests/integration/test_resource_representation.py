"""The stored representation is the one resource everywhere: what a write answers, what GET and
a list page show, what `?fields=` projects and what the event carries agree after every kind of
write; and migration 0003 renders the rows already there exactly as the service does."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from bench.seed_events import seed_events
from services.resource.app import MIGRATIONS, SCHEMA
from services.resource.documents import representation
from services.resource.repo import COLUMNS_SQL
from services.resource.types import EVENT_TYPE, LOCATION_TYPE
from shared.db import ensure_database
from shared.migrations import apply_migrations
from tests.conftest import Suite
from tests.factories import EVENT, create
from tests.integration.test_resource_events import collect, domain_queue, events_of

__all__ = ["domain_queue"]  # the fixture, used by name


async def _everywhere(suite: Suite, token: str, answered: dict[str, Any], tag: str) -> None:
    resp, shown = await suite.request("GET", f"/v2/event/{answered['id']}", token=token)
    assert resp.status == 200 and shown == answered
    assert resp.headers["ETag"] == f'"{answered["version"]}"'
    resp, page = await suite.request("GET", f"/v2/event/list?tags={tag}&id={answered['id']}", token=token)
    assert resp.status == 200 and page == [answered]
    resp, page = await suite.request(
        "GET", f"/v2/event/list?tags={tag}&id={answered['id']}&fields=version,id,tags,updatedAt", token=token
    )
    assert page == [{name: answered[name] for name in ("version", "id", "tags", "updatedAt")}]
    url = f"{suite.edge_url}/v2/event/list?id={answered['id']}&fields=title,id,title"
    async with suite.session.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
        raw = await resp.text()
    assert orjson.loads(raw) == [{"title": answered["title"], "id": answered["id"]}]
    assert raw.count('"title"') == 1  # named twice, shown once


def _stored(
    type_: str,
    status: str | None,
    version: int,
    created_at: datetime,
    updated_at: datetime,
    doc: dict[str, Any],
) -> dict[str, Any]:
    """A row of the resources table, of a new id and owner."""
    return {
        "id": uuid.uuid4(),
        "type": type_,
        "owner_id": uuid.uuid4(),
        "status": status,
        "version": version,
        "created_at": created_at,
        "updated_at": updated_at,
        "doc": doc,
    }


async def test_every_write_answers_what_get_lists_and_the_event_show(suite: Suite, domain_queue: Any) -> None:
    _, _, token = await suite.new_user()
    _, _, approver = await suite.new_user(["approver"])
    tag = "rep" + uuid.uuid4().hex[:8]
    resp, event = await create(suite, token, "event", {**EVENT, "tags": [tag], "description": None})
    assert resp.status == 201, event
    answers = [event]
    path = f"/v2/event/{event['id']}"
    writes: list[tuple[str, str, str, Any]] = [
        ("PATCH", path, token, {"capacity": 7, "title": 'Ünïcode ✓ "quoted"'}),
        ("PUT", path, token, {**EVENT, "tags": [tag, "b"], "startsAt": "2027-03-01T19:00:00+01:00"}),
        ("POST", f"{path}/submit", token, None),
        ("POST", f"{path}/approve", approver, {"comment": "fine"}),
        ("PATCH", path, token, {"description": "edited after approval"}),  # back to pending
    ]
    for method, url, who, body in writes:
        resp, answered = await suite.request(method, url, token=who, json=body)
        assert resp.status == 200, (method, url, answered)
        assert resp.headers["ETag"] == f'"{answered["version"]}"'
        await _everywhere(suite, token, answered, tag)
        answers.append(answered)
    assert [a["version"] for a in answers] == [1, 2, 3, 4, 5, 6]
    assert [a["status"] for a in answers] == ["draft", "draft", "draft", "pending", "approved", "pending"]
    assert answers[1]["updatedAt"] >= answers[0]["createdAt"] == answers[1]["createdAt"]
    resp, _ = await suite.request("DELETE", path, token=token)
    assert resp.status == 204
    messages = await collect(domain_queue, lambda got: len(events_of(got, event["id"])) == 7)
    data = [e["data"] for e in events_of(messages, event["id"])]
    assert data == [*answers, answers[-1]]  # deleted: the resource as it was


async def test_a_batch_answers_each_item_as_get_shows_it(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    tag = "rep" + uuid.uuid4().hex[:8]
    resp, made = await create(
        suite, token, "event", [{**EVENT, "title": f"B{i}", "tags": [tag]} for i in range(3)]
    )
    assert resp.status == 201, made
    resp, page = await suite.request("GET", f"/v2/event/list?tags={tag}&sort=title", token=token)
    assert page == made
    for item in made:
        await _everywhere(suite, token, item, tag)


async def test_migration_0003_renders_existing_rows_as_the_service_does(
    fresh_database_url: str, tmp_path: Path
) -> None:
    await ensure_database(fresh_database_url)
    for path in MIGRATIONS.glob("*.sql"):  # the schema as it was before 0003
        if path.name < "0003":
            (tmp_path / path.name).write_text(path.read_text())
    await apply_migrations(fresh_database_url, SCHEMA, tmp_path)
    conn = await asyncpg.connect(fresh_database_url, server_settings={"search_path": SCHEMA})
    try:
        rows = [
            _stored(  # sub-millisecond times, a time before year 1000, absent optional fields
                "event",
                "approved",
                3,
                datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
                datetime(987, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
                {
                    "title": 'É "x"',
                    "startsAt": "2027-01-01T00:00:00.000Z",
                    "endsAt": "2027-01-01T01:00:00.000Z",
                },
            ),
            _stored(
                "event",
                "draft",
                1,
                datetime(2027, 5, 1, 10, 0, 0, 1000, tzinfo=UTC),
                datetime(2027, 5, 1, 10, 0, 0, 1000, tzinfo=UTC),
                {
                    "title": "Full",
                    "description": "d",
                    "startsAt": "2027-05-01T10:00:00.000Z",
                    "endsAt": "2027-05-01T12:00:00.000Z",
                    "locationId": str(uuid.uuid4()),
                    "capacity": 12,
                    "tags": ["a", "b"],
                },
            ),
            _stored(
                "location",
                None,
                2,
                datetime(2025, 1, 1, tzinfo=UTC),
                datetime(2025, 2, 1, 0, 0, 0, 500, tzinfo=UTC),
                {"name": "Hall", "timezone": "Europe/Paris"},
            ),
        ]
        for row in rows:
            await conn.execute(
                "INSERT INTO resources (id, type, owner_id, status, version, created_at, updated_at, doc)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)",
                *(
                    row[k]
                    for k in ("id", "type", "owner_id", "status", "version", "created_at", "updated_at")
                ),
                orjson.dumps(row["doc"]).decode(),
            )
    finally:
        await conn.close()
    assert "0003_shown.sql" in await apply_migrations(fresh_database_url, SCHEMA, MIGRATIONS)
    conn = await asyncpg.connect(fresh_database_url, server_settings={"search_path": SCHEMA})
    try:
        for row in rows:
            text = await conn.fetchval("SELECT shown::text FROM resources WHERE id = $1", row["id"])
            rtype = EVENT_TYPE if row["type"] == "event" else LOCATION_TYPE
            expected = representation(rtype, row)
            assert orjson.loads(text) == expected
            assert list(orjson.loads(text)) == list(expected)  # field order too
    finally:
        await conn.close()


async def test_seeded_events_are_stored_as_the_service_renders_them(fresh_database_url: str) -> None:
    """bench/seed_events.py builds the representation itself (for speed): it must be the one
    the service would store, or the benchmarks would measure something else."""
    await ensure_database(fresh_database_url)
    await apply_migrations(fresh_database_url, SCHEMA, MIGRATIONS)
    await seed_events(fresh_database_url, 300, owners=5, locations=3)
    conn = await asyncpg.connect(fresh_database_url, server_settings={"search_path": SCHEMA})
    try:
        rows = await conn.fetch(f"SELECT {COLUMNS_SQL} FROM resources")
    finally:
        await conn.close()
    assert len(rows) == 303
    for record in rows:
        row = dict(record)
        row["doc"] = orjson.loads(row["doc"])
        rtype = EVENT_TYPE if row["type"] == "event" else LOCATION_TYPE
        expected = representation(rtype, row)
        assert row["shown"] == orjson.dumps(expected).decode()  # byte for byte
    statuses = {dict(r)["status"] for r in rows}
    assert {"approved", "draft", "pending"} <= statuses

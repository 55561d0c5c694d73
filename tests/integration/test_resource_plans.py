"""The list queries of events use their indexes: no sequential scan of the resources table for
a filtered, sorted page. On 20,000 seeded events here; `bench/resource_explain.py` records the
same plans at 1,000,000."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
from multidict import MultiDict

from bench.resource_explain import explain
from bench.seed_events import seed_events
from services.resource.app import MIGRATIONS, SCHEMA
from services.resource.query import parse_list_query
from services.resource.repo import ResourceRepo, new_rows
from services.resource.statistics import refresh_statistics
from services.resource.types import EVENT_TYPE
from shared.db import Database, ensure_database
from shared.migrations import apply_migrations
from shared.verifier import Principal


async def test_filtered_sorted_pages_are_index_scans(fresh_database_url: str) -> None:
    await ensure_database(fresh_database_url)
    await apply_migrations(fresh_database_url, SCHEMA, MIGRATIONS)
    owners = [uuid.uuid4() for _ in range(500)]
    await seed_events(fresh_database_url, 20_000, owners=owners)
    conn = await asyncpg.connect(fresh_database_url, server_settings={"search_path": SCHEMA})
    try:
        results = await explain(conn, owners[7])
    finally:
        await conn.close()
    assert len(results) == 9
    (drafts,) = [r for r in results if "own drafts" in r["query"]]
    # Only the member's own drafts can match: their owner index, not every draft of everyone.
    owner_lookup = [line for line in drafts["plan"] if "Index Cond" in line and "owner_id = " in line]
    assert owner_lookup, drafts["plan"]
    for result in results:
        plan = "\n".join(result["plan"])
        if "q=" in result["query"]:
            # At 20,000 rows a scan of 900 pages is the planner's cheapest answer to a text
            # search; at 1,000,000 it walks the startsAt index (see the bench's plans).
            continue
        assert "Seq Scan on resources" not in plan, (result["query"], plan)
        if "count" not in result["query"]:
            assert result["plan"][0].startswith("Limit"), plan


async def test_a_tag_most_events_carry_pages_by_the_start_index(fresh_database_url: str) -> None:
    """After a burst of creates that all carry one tag (what the benchmark's creates do), that
    tag's first page walks the startsAt index and stops after 51 rows, once the statistics
    followed: not a bitmap scan of every match and a sort, whose cost grows with the table."""
    await ensure_database(fresh_database_url)
    await apply_migrations(fresh_database_url, SCHEMA, MIGRATIONS)
    db = await Database.connect(fresh_database_url, SCHEMA, 2)
    try:
        await seed_events(fresh_database_url, 2_000)  # analyzed: none of them has the tag
        owner = uuid.uuid4()
        body = {
            "title": "Bench",
            "startsAt": "2027-06-01T18:00:00.000Z",
            "endsAt": "2027-06-01T20:00:00.000Z",
        }
        async with db.connection() as conn:
            repo = ResourceRepo(conn, EVENT_TYPE)
            for _ in range(10):
                rows = new_rows(EVENT_TYPE, owner, "draft", [{**body, "tags": ["common"]}] * 500)
                await repo.insert_with_events(rows, [], None)
            await conn.execute("SELECT pg_stat_force_next_flush()")
        async with asyncio.timeout(60):  # the counters reach pg_stat_user_tables within seconds
            while not await refresh_statistics(db):  # noqa: ASYNC110 (a counter in PostgreSQL: no event to wait on)
                await asyncio.sleep(0.5)
        assert not await refresh_statistics(db)  # nothing changed since
        admin = Principal(str(uuid.uuid4()), "a@example.com", ("admin",), 1, 0)
        listing = parse_list_query(EVENT_TYPE, MultiDict({"tags": "common"}), admin, 50)
        text, args = listing.select()
        async with db.connection() as conn:
            plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN ANALYZE {text}", *args))
        assert plan.startswith("Limit") and "Index Scan using events_starts" in plan, plan
        assert "Bitmap" not in plan and "Sort" not in plan, plan
    finally:
        await db.close()

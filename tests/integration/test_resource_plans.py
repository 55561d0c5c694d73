"""The list queries of events use their indexes: no sequential scan of the resources table for
a filtered, sorted page. On 20,000 seeded events here; `bench/resource_explain.py` records the
same plans at 1,000,000."""

from __future__ import annotations

import uuid

import asyncpg

from bench.resource_explain import explain
from bench.seed_events import seed_events
from services.resource.app import MIGRATIONS, SCHEMA
from shared.db import ensure_database
from shared.migrations import apply_migrations


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
    assert len(results) == 8
    for result in results:
        plan = "\n".join(result["plan"])
        if "q=" in result["query"]:
            # At 20,000 rows a scan of 900 pages is the planner's cheapest answer to a text
            # search; at 1,000,000 it walks the startsAt index (see the bench's plans).
            continue
        assert "Seq Scan on resources" not in plan, (result["query"], plan)
        if "count" not in result["query"]:
            assert result["plan"][0].startswith("Limit"), plan

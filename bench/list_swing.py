"""Why list-50 swung between 425 and 45 req/s: the plan of a tag's first page as the table grows.

Creates events as the benchmark's creates make them (every one tagged `bench`, through the
service's own insert), and records EXPLAIN (ANALYZE, BUFFERS) of the `?tags=bench` page (as an
admin) and of a member's default page at 1,000 and at 14,800 such events, then again after
ANALYZE. `nostats` first drops migration 0004's statistics (the schema as it was before).
The record of a run: bench/results/list-swing-20261202.txt.

    python bench/list_swing.py [nostats]
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from multidict import MultiDict

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.resource.app import MIGRATIONS, SCHEMA
from services.resource.query import parse_list_query
from services.resource.repo import ResourceRepo, new_rows
from services.resource.types import EVENT_TYPE
from shared.db import ensure_database
from shared.events import make_event
from shared.migrations import apply_migrations
from shared.verifier import Principal

SERVER = "postgresql://postgres@127.0.0.1:5432"
EVENT = {
    "title": "Benchmark event",
    "description": "Created by bench/resource_rates.py",
    "startsAt": "2027-06-01T18:00:00.000Z",
    "endsAt": "2027-06-01T20:00:00.000Z",
    "capacity": 50,
    "tags": ["bench"],
}


async def plan(conn: asyncpg.Connection, caller: Principal, params: dict[str, str]) -> str:
    listing = parse_list_query(EVENT_TYPE, MultiDict(params), caller, 50)
    text, args = listing.select()
    return "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {text}", *args))


async def main(drop_statistics: bool) -> None:
    name = f"herald_swing_{uuid.uuid4().hex[:6]}"
    dsn = f"{SERVER}/{name}"
    await ensure_database(dsn)
    await apply_migrations(dsn, SCHEMA, MIGRATIONS)
    conn = await asyncpg.connect(dsn, server_settings={"search_path": SCHEMA})
    admin = Principal(str(uuid.uuid4()), "a@example.com", ("admin",), 1, 0)
    member = Principal(str(uuid.uuid4()), "m@example.com", ("member",), 1, 0)
    repo = ResourceRepo(conn, EVENT_TYPE)

    async def creates(n: int) -> None:
        for done in range(0, n, 500):
            rows = new_rows(EVENT_TYPE, uuid.UUID(admin.user_id), "draft", [dict(EVENT)] * min(500, n - done))
            events: list[dict[str, Any]] = [
                make_event("event.created", orjson.Fragment(row["shown"])) for row in rows
            ]
            await repo.insert_with_events(rows, events, None)

    try:
        if drop_statistics:
            for stat in ("tags", "starts", "ends", "location", "name"):
                await conn.execute(f"DROP STATISTICS resources_{stat}")
        await creates(1000)
        await conn.execute("ANALYZE resources")
        print("== 1,000 bench events, analyzed\n" + await plan(conn, admin, {"tags": "bench"}) + "\n")
        await creates(13800)
        print("== 14,800 bench events, statistics of the 1,000")
        print(await plan(conn, admin, {"tags": "bench"}) + "\n\n" + await plan(conn, member, {}) + "\n")
        await conn.execute("ANALYZE resources")
        print("== 14,800 bench events, analyzed")
        print(await plan(conn, admin, {"tags": "bench"}) + "\n\n" + await plan(conn, member, {}) + "\n")
    finally:
        await conn.close()
        server = await asyncpg.connect(f"{SERVER}/postgres")
        await server.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await server.close()


if __name__ == "__main__":
    asyncio.run(main("nostats" in sys.argv[1:]))

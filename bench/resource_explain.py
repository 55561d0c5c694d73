"""The plans of the resource list queries on a large events table.

Fills a scratch database with N events (default 1,000,000: bench/seed_events.py, owners,
statuses, start times and tags spread like a busy installation), builds the list queries with the service's own query
builder (so what is measured is what runs), and records EXPLAIN (ANALYZE, BUFFERS) of each.
Writes bench/results/resource-explain-<timestamp>.json and prints a Markdown table.

    python bench/resource_explain.py [rows]
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from multidict import MultiDict

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.seed_events import seed_events  # noqa: E402
from services.resource.app import MIGRATIONS, SCHEMA  # noqa: E402
from services.resource.query import parse_list_query  # noqa: E402
from services.resource.types import EVENT_TYPE  # noqa: E402
from shared.db import ensure_database  # noqa: E402
from shared.migrations import apply_migrations  # noqa: E402
from shared.verifier import Principal  # noqa: E402
from shared.web.paging import encode_cursor  # noqa: E402

SERVER = os.environ.get("HERALD_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
OWNERS = 5000
MEMBER_OWNER_INDEX = 7  # the member whose view is measured owns events like everyone else


def queries(member: uuid.UUID, cursor_row: dict[str, Any]) -> dict[str, tuple[Principal, dict[str, str]]]:
    as_member = Principal(str(member), "m@example.com", ("member",), 1, 0)
    as_approver = Principal(str(uuid.uuid4()), "a@example.com", ("approver",), 1, 0)
    cursor = encode_cursor([cursor_row["startsAt"], str(cursor_row["id"])])
    return {
        "member: default page (approved or own, by startsAt)": (as_member, {}),
        "member: page 2 by keyset cursor": (as_member, {"cursor": cursor}),
        "member: startsAt range, newest first": (
            as_member,
            {
                "startsAt[gte]": "2027-06-01T00:00:00Z",
                "startsAt[lt]": "2027-07-01T00:00:00Z",
                "sort": "-startsAt",
            },
        ),
        "member: own drafts (status=draft)": (as_member, {"status": "draft"}),
        "approver: status=pending by startsAt": (as_approver, {"status": "pending"}),
        "approver: tags[in]=tag3,tag4": (as_approver, {"tags[in]": "tag3,tag4"}),
        "approver: q=fireworks": (as_approver, {"q": "fireworks"}),
        "approver: ownerId=<one owner>": (as_approver, {"ownerId": str(member)}),
        "approver: count=exact status=pending": (as_approver, {"status": "pending", "count": "exact"}),
    }


async def explain(conn: asyncpg.Connection, member: uuid.UUID) -> list[dict[str, Any]]:
    row = await conn.fetchrow(
        "SELECT id, doc->>'startsAt' AS \"startsAt\" FROM resources WHERE type = 'event'"
        " AND status = 'approved' ORDER BY doc->'startsAt', id OFFSET 50 LIMIT 1"
    )
    results = []
    for name, (caller, params) in queries(member, dict(row)).items():
        listing = parse_list_query(EVENT_TYPE, MultiDict(params), caller, 50)
        text, args = listing.count_query() if listing.count else listing.select()
        plan = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {text}", *args)
        lines = [r[0] for r in plan]
        took = next((float(line.split()[-2]) for line in lines if line.startswith("Execution Time")), -1.0)
        results.append({"query": name, "sql": text, "execution_ms": took, "plan": lines})
    return results


async def main(rows: int) -> dict[str, Any]:
    name = f"herald_bench_explain_{uuid.uuid4().hex[:8]}"
    dsn = f"{SERVER}/{name}"
    await ensure_database(dsn)
    try:
        await apply_migrations(dsn, SCHEMA, MIGRATIONS)
        owners = [uuid.uuid4() for _ in range(OWNERS)]
        seeded = await seed_events(dsn, rows, owners=owners)
        conn = await asyncpg.connect(dsn, server_settings={"search_path": SCHEMA})
        try:
            return {
                "rows": rows,
                "seed_seconds": round(seeded.seconds, 1),
                "queries": await explain(conn, owners[MEMBER_OWNER_INDEX]),
            }
        finally:
            await conn.close()
    finally:
        admin = await asyncpg.connect(f"{SERVER}/postgres")
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    report = asyncio.run(main(count))
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out = ROOT / "bench" / "results" / f"resource-explain-{stamp}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"{report['rows']:,} events seeded in {report['seed_seconds']} s\n")
    print("| query | execution (ms) | plan (top node) |\n|---|---:|---|")
    for q in report["queries"]:
        print(f"| {q['query']} | {q['execution_ms']:.2f} | {q['plan'][0].split('  (')[0].strip()} |")
    print(f"\nwritten to {out.relative_to(ROOT)}")

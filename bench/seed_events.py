"""Seed a migrated resource schema with N events, fast (COPY), as the service would have written
them: the stored document, the search vector and the stored representation are made by the
service's own code, so that what is measured later is what the API would answer.

The mix is a busy installation's: many owners, about 70 % of the events approved (the rest
draft, pending, rejected or cancelled), start times over three years, 0 to 3 tags out of 50, a
few locations (half the events at one of them). Rows are built in Python, copied in binary into
a temporary table and moved into `resources` in one transaction with the secondary indexes
dropped and built again (much faster than maintaining nine indexes row by row; a failure rolls
everything back, indexes included), then ANALYZE.

    python bench/seed_events.py DSN COUNT        (DSN of a database the resource service migrated)

`seed_events(dsn, count, ...)` is what the benchmarks call; keep its signature stable.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.resource.documents import representation
from services.resource.repo import search_text, stored
from services.resource.types import EVENT_TYPE, LOCATION_TYPE
from shared.events import format_time

STATUSES = (("approved", 70), ("draft", 10), ("pending", 10), ("rejected", 4), ("cancelled", 6))
TAGS = tuple(f"tag{i}" for i in range(50))
WORDS = ("launch", "party", "meetup", "talk", "workshop", "concert", "fireworks", "market", "game", "film")
CHUNK = 50_000  # rows per COPY: bounded memory whatever the count
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Seeded:
    events: int
    locations: list[uuid.UUID]
    owners: list[uuid.UUID]
    seconds: float


def _status_picker(rng: random.Random) -> Iterator[str]:
    population = [s for s, weight in STATUSES for _ in range(weight)]
    while True:
        yield rng.choice(population)


def _event_row(
    rng: random.Random, n: int, owner: uuid.UUID, status: str, location: uuid.UUID | None
) -> tuple[Any, ...]:
    starts = EPOCH + timedelta(minutes=15 * rng.randrange(3 * 365 * 96))
    created = EPOCH - timedelta(seconds=rng.randrange(365 * 24 * 3600), microseconds=rng.randrange(10**6))
    words = " ".join(rng.choice(WORDS) for _ in range(3))
    doc: dict[str, Any] = {
        "title": f"Event {n}: {words}",
        "startsAt": format_time(starts),
        "endsAt": format_time(starts + timedelta(hours=rng.choice((1, 2, 3, 8)))),
        "tags": rng.sample(TAGS, rng.randrange(4)),
    }
    if rng.random() < 0.8:
        doc["description"] = f"Number {n} of the seeded events, about {rng.choice(WORDS)}."
    if rng.random() < 0.6:
        doc["capacity"] = rng.randrange(10, 5000)
    if location is not None:
        doc["locationId"] = str(location)
    row = {
        "id": uuid.uuid4(),
        "owner_id": owner,
        "status": status,
        "version": 1,
        "created_at": created,
        "updated_at": created,
        "doc": doc,
    }
    return _record(row, "event")


def _record(row: dict[str, Any], type_name: str) -> tuple[Any, ...]:
    rtype = EVENT_TYPE if type_name == "event" else LOCATION_TYPE
    return (
        row["id"],
        type_name,
        row["owner_id"],
        row["status"],
        row["created_at"],
        orjson.dumps(row["doc"]).decode(),
        search_text(rtype, row["doc"]),
        stored(representation(rtype, row)),
    )


_STAGING = """CREATE TEMP TABLE seed_rows (
    id uuid, type text, owner_id uuid, status text, at timestamptz, doc text, words text, shown text
) ON COMMIT DROP"""
_MOVE = """INSERT INTO resources (id, type, owner_id, status, version, created_at, updated_at, doc, search, shown)
    SELECT id, type, owner_id, status, 1, at, at, doc::jsonb, to_tsvector('simple', words), shown::json
    FROM seed_rows"""
COLUMNS = ("id", "type", "owner_id", "status", "at", "doc", "words", "shown")


async def seed_events(
    dsn: str,
    count: int,
    *,
    owners: int | Sequence[uuid.UUID] = 2000,
    locations: int = 20,
    schema: str = "resource",
    seed: int = 1,
) -> Seeded:
    """Add `count` events (and `locations` locations) to the resource schema at `dsn`, then
    ANALYZE. `owners`: how many random owners, or the owners to spread the events over (a
    benchmark's own user among them sees their drafts too)."""
    started = time.perf_counter()
    rng = random.Random(seed)  # noqa: S311 (made-up data, repeatable)
    owner_ids = list(owners) if not isinstance(owners, int) else [uuid.uuid4() for _ in range(owners)]
    statuses = _status_picker(rng)
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        await conn.execute("SET maintenance_work_mem = '256MB'")
        async with conn.transaction():
            indexes = await conn.fetch(
                "SELECT i.relname AS name, pg_get_indexdef(i.oid) AS ddl FROM pg_index x"
                " JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid"
                " JOIN pg_namespace s ON s.oid = t.relnamespace"
                " WHERE t.relname = 'resources' AND s.nspname = $1 AND NOT x.indisprimary",
                schema,
            )
            for index in indexes:
                await conn.execute(f'DROP INDEX "{index["name"]}"')
            await conn.execute(_STAGING)
            place_rows = [
                _record(
                    {
                        "id": uuid.uuid4(),
                        "owner_id": rng.choice(owner_ids),
                        "status": None,
                        "version": 1,
                        "created_at": EPOCH - timedelta(days=400 + i),
                        "updated_at": EPOCH - timedelta(days=400 + i),
                        "doc": {"name": f"Hall {i}", "capacity": 100 * (i + 1), "timezone": "UTC"},
                    },
                    "location",
                )
                for i in range(locations)
            ]
            place_ids = [row[0] for row in place_rows]
            await conn.copy_records_to_table("seed_rows", records=place_rows, columns=COLUMNS)
            for first in range(0, count, CHUNK):
                records = [
                    _event_row(
                        rng,
                        n,
                        owner_ids[rng.randrange(len(owner_ids))],
                        next(statuses),
                        rng.choice(place_ids) if place_ids and rng.random() < 0.5 else None,
                    )
                    for n in range(first, min(first + CHUNK, count))
                ]
                await conn.copy_records_to_table("seed_rows", records=records, columns=COLUMNS)
            await conn.execute(_MOVE)
            for index in indexes:
                await conn.execute(index["ddl"])
        await conn.execute("ANALYZE resources")
    finally:
        await conn.close()
    return Seeded(count, place_ids, owner_ids, time.perf_counter() - started)


async def _main(dsn: str, count: int) -> None:
    seeded = await seed_events(dsn, count)
    print(f"{seeded.events:,} events and {len(seeded.locations)} locations in {seeded.seconds:.1f} s")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    asyncio.run(_main(sys.argv[1], int(sys.argv[2])))

"""Seed a migrated resource schema with N events, fast (COPY), as the service would have written
them: the stored document, the search vector and the stored representation are made by the
service's own code, so that what is measured later is what the API would answer.

The mix is a busy installation's: many owners, about 70 % of the events approved (the rest
draft, pending, rejected or cancelled), start times over three years, 0 to 3 tags out of 50, a
few locations (half the events at one of them). Rows are built in Python, copied in binary into
a temporary table and moved into `resources` in one transaction with the secondary indexes
dropped and built again (much faster than maintaining nine indexes row by row; a failure rolls
everything back, indexes included), then VACUUM (ANALYZE).

    python bench/seed_events.py DSN COUNT        (DSN of a database the resource service migrated)

`seed_events(dsn, count, ...)` is what the benchmarks call; keep its signature stable.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
import uuid
from collections.abc import Sequence
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
    phases: dict[str, float]  # seconds: rows made and copied, moved, indexes built, vacuumed


_SLOTS = 3 * 365 * 96  # start times: every quarter of an hour over three years
_YEAR_US = 365 * 24 * 3600 * 10**6
_STATUS_POOL = tuple(s for s, weight in STATUSES for _ in range(weight))
_HOURS = (1, 2, 3, 8)


def _utc_text(moment: datetime) -> str:
    """`format_time` of a UTC time, in C (isoformat): the seed formats two per event."""
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"


def _random_uuid(bits: int) -> str:
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def _events(
    rng: random.Random, first: int, count: int, owners: list[str], places: list[str]
) -> list[tuple[Any, ...]]:
    """Event records for COPY. The stored representation is built here in declared order, as
    `documents.representation` renders it (tests/integration/test_resource_plans.py checks the
    two agree): the generic path costs ten times as much per row, which 1,000,000 rows feel."""
    records = []
    for n in range(first, first + count):
        bits = rng.getrandbits(128)  # one draw, cut into every choice the row needs
        slot, bits = bits % _SLOTS, bits // _SLOTS
        ago, bits = bits % _YEAR_US, bits // _YEAR_US
        picked = []
        for size in (10, 10, 10, 4, 5, 10, 5, 4990, 2, 4, len(_STATUS_POOL), max(len(places), 1)):
            picked.append(bits % size)
            bits //= size
        (
            w1,
            w2,
            w3,
            ntags,
            has_description,
            word,
            has_capacity,
            capacity_at,
            at_place,
            hours,
            status_at,
            place,
        ) = picked
        starts = EPOCH + timedelta(minutes=15 * slot)
        created = EPOCH - timedelta(microseconds=ago)
        words = f"{WORDS[w1]} {WORDS[w2]} {WORDS[w3]}"
        tags = rng.sample(TAGS, ntags)
        description = f"Number {n} of the seeded events, about {WORDS[word]}." if has_description else None
        capacity = 10 + capacity_at if has_capacity < 3 else None
        location = places[place] if places and at_place else None
        status = _STATUS_POOL[status_at]
        owner = owners[rng.randrange(len(owners))]
        title = f"Event {n}: {words}"
        starts_at = _utc_text(starts)
        ends_at = _utc_text(starts + timedelta(hours=_HOURS[hours]))
        doc: dict[str, Any] = {"title": title, "startsAt": starts_at, "endsAt": ends_at, "tags": tags}
        if description is not None:
            doc["description"] = description
        if capacity is not None:
            doc["capacity"] = capacity
        if location is not None:
            doc["locationId"] = location
        resource_id = _random_uuid(rng.getrandbits(128))
        at = _utc_text(created)
        shown = {
            "id": resource_id,
            "title": title,
            "description": description,
            "startsAt": starts_at,
            "endsAt": ends_at,
            "locationId": location,
            "capacity": capacity,
            "tags": tags,
            "status": status,
            "ownerId": owner,
            "createdAt": at,
            "updatedAt": at,
            "version": 1,
        }
        search = f"{title} {description}" if description is not None else title
        records.append(
            (resource_id, "event", owner, status, created, orjson.dumps(doc).decode(), search, stored(shown))
        )
    return records


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
    VACUUM (ANALYZE). `owners`: how many random owners, or the owners to spread the events over (a
    benchmark's own user among them sees their drafts too)."""
    started = time.perf_counter()
    rng = random.Random(seed)  # noqa: S311 (made-up data, repeatable)
    owner_ids = list(owners) if not isinstance(owners, int) else [uuid.uuid4() for _ in range(owners)]
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
            owner_texts = [str(owner) for owner in owner_ids]
            place_texts = [str(place) for place in place_ids]
            phases = {"rows": time.perf_counter() - started}
            for first in range(0, count, CHUNK):
                records = _events(rng, first, min(CHUNK, count - first), owner_texts, place_texts)
                await conn.copy_records_to_table("seed_rows", records=records, columns=COLUMNS)
            phases["rows"] = time.perf_counter() - started
            await conn.execute(_MOVE)
            phases["move"] = time.perf_counter() - started - phases["rows"]
            for index in indexes:
                await conn.execute(index["ddl"])
            phases["indexes"] = time.perf_counter() - started - phases["rows"] - phases["move"]
        mark = time.perf_counter()
        # As autovacuum leaves a table this size (it may be off here): statistics for the
        # planner, the visibility map for index-only scans (count=exact).
        await conn.execute("VACUUM (ANALYZE) resources")
        phases["vacuum"] = time.perf_counter() - mark
    finally:
        await conn.close()
    return Seeded(count, place_ids, owner_ids, time.perf_counter() - started, phases)


async def _main(dsn: str, count: int) -> None:
    seeded = await seed_events(dsn, count)
    parts = ", ".join(f"{name} {seconds:.1f}" for name, seconds in seeded.phases.items())
    print(
        f"{seeded.events:,} events and {len(seeded.locations)} locations in {seeded.seconds:.1f} s ({parts})"
    )


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    asyncio.run(_main(sys.argv[1], int(sys.argv[2])))

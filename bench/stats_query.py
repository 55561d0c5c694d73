"""The delivery statistics query (GET /v2/subscription/{id}/stats) on a large delivery log.

Fills a scratch database with N attempts (default 1,000,000) of one subscription over the last
7 days (a delivery in four is attempted twice; a few are failed or still pending), written in
single statements so the rollup trigger of migration 0009 keeps the per-minute statistics as it
does for the worker, then times what the endpoint does (the rollup and pending queries and the
percentiles: StatsRepo.buckets and percentiles) for each bucket width and window. Writes
bench/results/stats-query-<timestamp>.json and prints a Markdown table.

    python bench/stats_query.py [attempts] [repeats]
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import percentile  # noqa: E402
from bench.scratch import scratch_database  # noqa: E402
from services.webhook_delivery.app import MIGRATIONS, SCHEMA  # noqa: E402
from services.webhook_delivery.store.stats_repo import ORIGIN, SPANS, StatsRepo, percentiles  # noqa: E402
from shared.events import utc_now  # noqa: E402

WINDOWS = (
    ("minute", timedelta(hours=1)),
    ("minute", timedelta(hours=24)),
    ("hour", timedelta(hours=24)),
    ("hour", timedelta(days=7)),
    ("day", timedelta(days=7)),
)


async def seed(conn: asyncpg.Connection, sub_id: uuid.UUID, attempts: int) -> None:
    deliveries = attempts * 4 // 5  # one in four of them has a second attempt
    await conn.execute(
        "INSERT INTO subscriptions (id, owner_id, url, url_key, topics, secret)"
        " VALUES ($1, $1, 'https://example.com/hook', 'example.com/hook', '{*}', 'whsec_bench')",
        sub_id,
    )
    # Spread evenly over the last 7 days: delivery i created at now - 7 d * (1 - i / n).
    await conn.execute(
        "INSERT INTO webhook_events (id, topic, body, created_at)"
        " SELECT md5('e' || i)::uuid, 'event.created', '{}', now() - interval '7 days' * (1 - i::float8 / $1)"
        " FROM generate_series(1, $1) AS i",
        deliveries,
    )
    await conn.execute(
        "INSERT INTO deliveries (id, subscription_id, event_id, topic, status, attempts, next_attempt_at,"
        " created_at)"
        " SELECT md5('d' || i)::uuid, $2, md5('e' || i)::uuid, 'event.created',"
        "  CASE WHEN i > $1 - 50 THEN 'pending' WHEN i % 97 = 0 THEN 'failed' ELSE 'succeeded' END,"
        "  CASE WHEN i % 4 = 0 THEN 2 ELSE 1 END, CASE WHEN i > $1 - 50 THEN now() END,"
        "  now() - interval '7 days' * (1 - i::float8 / $1)"
        " FROM generate_series(1, $1) AS i",
        deliveries,
        sub_id,
    )
    # Every fourth delivery failed once first (a minute earlier); durations ~1 ms to ~3 s.
    await conn.execute(
        "INSERT INTO delivery_attempts (delivery_id, attempted_at, status_code, duration_ms, error)"
        " SELECT md5('d' || i)::uuid, now() - interval '7 days' * (1 - i::float8 / $1) + make_interval(mins => a),"
        "  CASE WHEN f THEN 503 ELSE 200 END, exp(random() * 8),"
        "  CASE WHEN f THEN 'the receiver answered 503' END"
        " FROM generate_series(1, $1) AS i,"
        "  LATERAL generate_series(0, CASE WHEN i % 4 = 0 THEN 1 ELSE 0 END) AS a,"
        "  LATERAL (SELECT a = 0 AND i % 4 = 0 OR i % 97 = 0 AND i <= $1 - 50) AS x (f)",
        deliveries,
    )
    await conn.execute("ANALYZE")


async def stats_once(conn: asyncpg.Connection, sub_id: uuid.UUID, bucket: str, window: timedelta) -> int:
    """What the handler does for one request; the number of buckets."""
    width, until = SPANS[bucket], utc_now()
    start = ORIGIN + (until - window - ORIGIN) // width * width
    end = start + width * -((start - until) // width)
    buckets = await StatsRepo(conn).buckets(sub_id, bucket, start, end)
    for b in buckets:
        if b.durations:
            percentiles(b.durations, (0.5, 0.95))
    return len(buckets)


async def main(attempts: int, repeats: int) -> dict[str, Any]:
    async with scratch_database("herald_bench_stats", SCHEMA, MIGRATIONS) as dsn:
        conn = await asyncpg.connect(dsn, server_settings={"search_path": SCHEMA})
        try:
            sub_id = uuid.uuid4()
            started = time.perf_counter()
            await seed(conn, sub_id, attempts)
            seeded = time.perf_counter() - started
            logged = await conn.fetchval("SELECT count(*) FROM delivery_attempts")
            rollup = await conn.fetchval("SELECT count(*) FROM delivery_stats")
            results = []
            for bucket, window in WINDOWS:
                count = await stats_once(conn, sub_id, bucket, window)  # warm
                took = []
                for _ in range(repeats):
                    t = time.perf_counter()
                    await stats_once(conn, sub_id, bucket, window)
                    took.append((time.perf_counter() - t) * 1000)
                results.append(
                    {
                        "bucket": bucket,
                        "window_hours": window / timedelta(hours=1),
                        "buckets": count,
                        "median_ms": round(percentile(took, 0.5), 2),
                        "p95_ms": round(percentile(took, 0.95), 2),
                    }
                )
            return {
                "attempts": logged,
                "rollup_rows": rollup,
                "seed_seconds": round(seeded, 1),
                "repeats": repeats,
                "queries": results,
            }
        finally:
            await conn.close()


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    report = asyncio.run(main(count, repeats))
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out = ROOT / "bench" / "results" / f"stats-query-{stamp}.json"
    out.write_text(json.dumps(report, indent=2))
    print(
        f"{report['attempts']:,} attempts seeded in {report['seed_seconds']} s;"
        f" {report['rollup_rows']:,} rollup rows\n"
    )
    print("| bucket | window | buckets | median (ms) | p95 (ms) |\n|---|---:|---:|---:|---:|")
    for q in report["queries"]:
        print(
            f"| {q['bucket']} | {q['window_hours']:g} h | {q['buckets']} | {q['median_ms']} | {q['p95_ms']} |"
        )
    print(f"\nwritten to {out.relative_to(ROOT)}")

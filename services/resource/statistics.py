"""The planner statistics of `resources`, kept fresh by the service itself.

A list page's plan depends on them: how many events carry a tag, are approved, start in a
range. After a burst of writes, stale statistics give plans that read every match and sort it
(a page that should cost 0.2 ms costing 50 ms and more, growing with the table). Autovacuum
re-analyzes a table after 2 % of its rows changed (migration 0004), but it may be off (some CI
and managed set-ups turn it off) or late; so the service checks every `interval` seconds and
runs ANALYZE itself past the same threshold. One replica at a time (an advisory lock); cheap
when nothing changed (one look at pg_stat_user_tables)."""

from __future__ import annotations

import asyncio
import logging

from shared.db import Database

log = logging.getLogger("herald.resource.statistics")

THRESHOLD_ROWS = 500  # as the table's autovacuum_analyze_threshold and scale factor
THRESHOLD_FRACTION = 0.02
_LOCK = "herald.resource.analyze"


async def refresh_statistics(db: Database) -> bool:
    """ANALYZE `resources` if enough of it changed since the last ANALYZE; whether it ran."""
    async with db.connection() as conn:
        changed, live = await conn.fetchrow(
            "SELECT n_mod_since_analyze, n_live_tup FROM pg_stat_user_tables"
            " WHERE relid = 'resources'::regclass"
        )
        if changed <= THRESHOLD_ROWS + THRESHOLD_FRACTION * live:
            return False
        if not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", _LOCK):
            return False  # another replica is analyzing
        try:
            async with conn.transaction():  # behind a migration's lock, give up rather than wait
                await conn.execute("SET LOCAL lock_timeout = '5s'")
                await conn.execute("ANALYZE resources")
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", _LOCK)
    log.info("analyzed resources (%d rows changed of %d)", changed, live)
    return True


async def keep_statistics_fresh(db: Database, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await refresh_statistics(db)
        except Exception as exc:  # the next round tries again
            log.warning("could not refresh the statistics of resources: %r", exc)

"""SQL of the subscriptions' rate limits: each limited subscription has one line of one-second
windows (Unix seconds) in PostgreSQL, shared by every worker process. A reservation takes slots
in the line's last window while it has room, else in the next one: windows fill one after the
other, none past the limit, and whoever asks first gets the earlier slot."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

# A slot is used only this far into its window: the attempt's start (a few milliseconds later)
# must fall in the same second. Past it, the slot is let go and another taken.
USABLE = 0.95


@dataclass(frozen=True, slots=True)
class Reserved:
    window: int  # the Unix second the slots are in
    granted: int  # how many (at least 1)
    now: float  # PostgreSQL's clock when they were taken (Unix seconds)


async def reserve(conn: asyncpg.Connection, sub_id: uuid.UUID, limit: int, want: int) -> Reserved:
    """Up to `want` slots of one window, the earliest with room from now on: one statement
    (the row's lock orders the processes that ask at once)."""
    row = await conn.fetchrow(
        "WITH n AS (SELECT extract(epoch FROM clock_timestamp())::float8 AS now)"
        " INSERT INTO rate_windows AS r (subscription_id, window_at, used, granted)"
        " SELECT $1, floor(n.now)::bigint, least($3::int, $2::int), least($3::int, $2::int) FROM n"
        " ON CONFLICT (subscription_id) DO UPDATE SET"
        "  window_at = CASE WHEN r.window_at < excluded.window_at THEN excluded.window_at"
        "   WHEN r.used >= $2 THEN r.window_at + 1 ELSE r.window_at END,"
        "  used = CASE WHEN r.window_at < excluded.window_at OR r.used >= $2 THEN least($3, $2)"
        "   ELSE least(r.used + $3, $2) END,"
        "  granted = CASE WHEN r.window_at < excluded.window_at OR r.used >= $2 THEN least($3, $2)"
        "   ELSE least(r.used + $3, $2) - r.used END"
        " RETURNING window_at, granted, (SELECT now FROM n)",
        sub_id,
        limit,
        want,
    )
    assert row is not None
    return Reserved(int(row["window_at"]), int(row["granted"]), float(row["now"]))

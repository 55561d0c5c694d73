"""A subscription's delivery statistics, read from the per-minute rollup that a trigger keeps
beside the attempt log (migration 0009) and from the deliveries still pending."""

from __future__ import annotations

import operator
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

# The rollup's duration histogram (delivery_duration_bucket in 0009): index 0 under 1 ms, index
# k (1..70) from 2^((k-1)/4) to 2^(k/4) ms, index 71 from 2^17.5 ms on.
HISTOGRAM_SIZE = 72
PER_DOUBLING = 4
# Buckets start at whole minutes, hours or days counted from here (UTC), as date_bin does.
ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class Bucket:
    succeeded: int = 0
    failed: int = 0
    pending: int = 0
    attempts: int = 0
    durations: list[int] = field(default_factory=lambda: [0] * HISTOGRAM_SIZE)


class StatsRepo:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def buckets(
        self, sub_id: uuid.UUID, start: datetime, end: datetime, width: timedelta
    ) -> list[Bucket]:
        """The buckets of `width` from `start` to `end` (both bucket boundaries)."""
        out = [Bucket() for _ in range((end - start) // width)]
        rows = await self.conn.fetch(
            "SELECT minute, delivered, attempts, failed, durations FROM delivery_stats"
            " WHERE subscription_id = $1 AND minute >= $2 AND minute < $3",
            sub_id,
            start,
            end,
        )
        for r in rows:
            b = out[(r["minute"] - start) // width]
            b.attempts += r["attempts"]
            b.failed += r["failed"]
            if r["delivered"]:
                b.succeeded += r["attempts"]
            b.durations = list(map(operator.add, b.durations, r["durations"]))
        pending = await self.conn.fetch(
            "SELECT date_bin($4, created_at, $5) AS start, count(*) AS n FROM deliveries"
            " WHERE subscription_id = $1 AND status = 'pending' AND created_at >= $2 AND created_at < $3"
            " GROUP BY 1",
            sub_id,
            start,
            end,
            width,
            ORIGIN,
        )
        for r in pending:
            out[(r["start"] - start) // width].pending = r["n"]
        return out


def percentile(histogram: list[int], fraction: float) -> float | None:
    """The duration (ms) below which `fraction` of the counted attempts fall, interpolated on a
    log scale inside its bucket (so within a bucket's width, about 19%); None when none."""
    total = sum(histogram)
    if not total:
        return None
    rank = fraction * total
    seen = 0
    for k, n in enumerate(histogram):
        if n and seen + n >= rank:
            share = max(0.0, rank - seen) / n
            if k == 0:
                return share  # under 1 ms: linear from 0
            low = 2 ** ((k - 1) / PER_DOUBLING)
            if k == HISTOGRAM_SIZE - 1:
                return low  # open-ended
            return low * 2 ** (share / PER_DOUBLING)
        seen += n
    return None  # unreachable: the ranks add up to the total

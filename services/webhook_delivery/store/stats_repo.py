"""A subscription's delivery statistics, read from the rollup (per minute, hour and day) that a
trigger keeps beside the attempt log (migration 0009), and from the deliveries still pending."""

from __future__ import annotations

import bisect
import itertools
import operator
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from shared.db import Repo

# The rollup's duration histogram (delivery_duration_bucket in 0009): index 0 under 1 ms, index
# k (1..70) from 2^((k-1)/4) to 2^(k/4) ms, index 71 from 2^17.5 ms on.
HISTOGRAM_SIZE = 72
PER_DOUBLING = 4
SPANS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
# Buckets start at whole minutes, hours or days counted from here (UTC), as date_bin does.
ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class Bucket:
    succeeded: int = 0
    failed: int = 0
    pending: int = 0
    attempts: int = 0
    durations: list[int] = field(default_factory=list)  # empty: no attempts


class StatsRepo(Repo):
    async def buckets(self, sub_id: uuid.UUID, span: str, start: datetime, end: datetime) -> list[Bucket]:
        """The buckets of a span ('minute', 'hour' or 'day') from `start` to `end`, both
        boundaries of that span."""
        width = SPANS[span]
        out = [Bucket() for _ in range((end - start) // width)]
        rows = await self.conn.fetch(
            "SELECT start, delivered, attempts, failed, durations FROM delivery_stats"
            " WHERE subscription_id = $1 AND span = $2 AND start >= $3 AND start < $4",
            sub_id,
            span,
            start,
            end,
        )
        for r in rows:
            b = out[(r["start"] - start) // width]
            b.attempts += r["attempts"]
            b.failed += r["failed"]
            if r["delivered"]:
                b.succeeded += r["attempts"]
            b.durations = (
                list(map(operator.add, b.durations, r["durations"])) if b.durations else r["durations"]
            )
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


def percentiles(histogram: list[int], fractions: tuple[float, ...]) -> list[float | None]:
    """The durations (ms) below which each fraction of the counted attempts falls, interpolated
    on a log scale inside its bucket (so within a bucket's width, about 19%); None when none."""
    running = list(itertools.accumulate(histogram))
    total = running[-1]
    if not total:
        return [None for _ in fractions]
    found: list[float | None] = []
    for fraction in fractions:
        rank = max(fraction * total, 1e-9)
        k = bisect.bisect_left(running, rank)  # the first bucket whose running count reaches it
        seen = running[k - 1] if k else 0
        share = (rank - seen) / histogram[k]
        if k == 0:
            found.append(share)  # under 1 ms: linear from 0
        elif k == HISTOGRAM_SIZE - 1:
            found.append(2 ** ((k - 1) / PER_DOUBLING))  # open-ended: where it starts
        else:
            found.append(2 ** ((k - 1 + share) / PER_DOUBLING))
    return found

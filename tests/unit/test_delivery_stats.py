"""Percentiles read off the delivery statistics' duration histogram (store/stats_repo.py), whose
buckets the SQL function delivery_duration_bucket (migration 0009) fills."""

from __future__ import annotations

import math

from services.webhook_delivery.store.stats_repo import HISTOGRAM_SIZE, PER_DOUBLING, percentiles


def _histogram(*durations_ms: float) -> list[int]:
    """As delivery_duration_bucket counts them (0-based here)."""
    counts = [0] * HISTOGRAM_SIZE
    for ms in durations_ms:
        k = 0 if ms < 1 else min(HISTOGRAM_SIZE - 1, 1 + math.floor(PER_DOUBLING * math.log2(ms)))
        counts[k] += 1
    return counts


def test_empty_has_no_percentiles() -> None:
    assert percentiles([0] * HISTOGRAM_SIZE, (0.5, 0.95)) == [None, None]


def test_percentiles_fall_within_a_bucket_of_the_exact_ones() -> None:
    durations = [0.4, 3.0, 12.0, 40.0, 40.0, 95.0, 250.0, 250.0, 900.0, 5000.0] * 10
    p50, p95 = percentiles(_histogram(*durations), (0.5, 0.95))
    width = 2 ** (1 / PER_DOUBLING)  # a bucket's upper bound over its lower
    # The 50th of the 100 is a 40 ms one, the 95th a 5000 ms one.
    assert p50 is not None and 40.0 / width <= p50 <= 40.0 * width
    assert p95 is not None and 5000.0 / width <= p95 <= 5000.0 * width


def test_the_ends_of_the_scale() -> None:
    assert percentiles(_histogram(0.2, 0.2), (0.5,)) == [0.5]  # under 1 ms: linear from 0 to 1
    (longest,) = percentiles(_histogram(10**7), (0.5,))
    assert longest == 2 ** ((HISTOGRAM_SIZE - 2) / PER_DOUBLING)  # open-ended: where it starts

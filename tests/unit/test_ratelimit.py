from __future__ import annotations

from services.gateway.ratelimit import TokenBuckets


def test_burst_then_refill_at_the_rate() -> None:
    buckets = TokenBuckets(rate=10, burst=3)
    verdicts = [buckets.take("u", now=100.0) for _ in range(4)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert [v.remaining for v in verdicts] == [2, 1, 0, 0]
    assert verdicts[-1].retry_after == 1
    assert not buckets.take("u", now=100.05).allowed
    assert buckets.take("u", now=100.11).allowed  # 0.11 s at 10/s refilled one token
    assert buckets.take("other", now=100.11).allowed  # buckets are per key


def test_retry_after_and_reset_follow_the_rate() -> None:
    buckets = TokenBuckets(rate=1 / 60, burst=2)  # 1 a minute
    buckets.take("a", now=0)
    buckets.take("a", now=0)
    denied = buckets.take("a", now=0)
    assert not denied.allowed and denied.retry_after == 60 and denied.reset == 120


def test_idle_buckets_are_forgotten_when_the_table_is_full() -> None:
    buckets = TokenBuckets(rate=1, burst=1, max_keys=3)
    for key in ("a", "b", "c"):
        buckets.take(key, now=0)
    buckets.take("d", now=10)  # a, b and c have refilled: forgotten
    assert set(buckets._buckets) == {"d"}
    buckets = TokenBuckets(rate=1, burst=1, max_keys=2)
    buckets.take("a", now=0)
    buckets.take("b", now=0)
    buckets.take("c", now=0)  # none refilled: the oldest goes
    assert set(buckets._buckets) == {"b", "c"}

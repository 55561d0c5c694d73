"""The retry schedule, Retry-After parsing and the circuit breaker, without I/O."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from services.webhook_delivery.engine.breaker import Breakers
from services.webhook_delivery.engine.retry import next_delay, parse_schedule, retry_after
from shared.config import Settings


def test_default_schedule_retries_for_about_three_days() -> None:
    schedule = parse_schedule(Settings().webhook_retry_schedule)
    assert schedule == (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
    assert parse_schedule(("0.2", "0.4")) == (0.2, 0.4)
    with pytest.raises(ValueError):
        parse_schedule(("-1",))


def test_next_delay_follows_the_schedule_with_bounded_jitter() -> None:
    schedule = (5.0, 300.0)
    rng = random.Random(7)
    assert next_delay(schedule, 0, 0.2) is None
    first = [next_delay(schedule, 1, 0.2, rng) for _ in range(200)]
    assert all(d is not None and 5.0 <= d <= 6.0 for d in first)
    assert max(d for d in first if d is not None) > 5.5  # jitter is really applied
    assert next_delay(schedule, 2, 0.0) == 300.0
    assert next_delay(schedule, 3, 0.2) is None  # schedule spent: the delivery has failed


def test_retry_after_in_seconds_or_as_a_date_and_bounded() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after("30", 3600) == 30
    assert retry_after("999999", 3600) == 3600
    assert retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), 3600, now) == 90
    assert retry_after(format_datetime(now - timedelta(seconds=90), usegmt=True), 3600, now) == 0
    assert retry_after(None, 3600) is None
    assert retry_after("soon", 3600) is None


def test_breaker_opens_half_opens_and_closes() -> None:
    clock = [100.0]
    breakers = Breakers(failures=2, seconds=10, clock=lambda: clock[0])
    sub = uuid.uuid4()
    assert breakers.admit(sub) == (0, False) and not breakers.is_open(sub)
    breakers.failure(sub)
    assert breakers.admit(sub) == (0, False) and breakers.open_count == 0
    breakers.failure(sub)
    assert breakers.admit(sub) == (10, False) and breakers.is_open(sub) and breakers.open_count == 1
    clock[0] += 10
    assert not breakers.is_open(sub)  # half-open with no probe out (and asking makes none)
    assert breakers.admit(sub) == (0, True)  # the probe
    assert breakers.is_open(sub)  # the rest are held while it is out
    assert breakers.admit(sub)[0] > 0  # everyone else waits for it
    breakers.released(sub)  # the probe did not go out after all: the next one is the probe
    assert breakers.admit(sub) == (0, True)
    breakers.failure(sub)  # the probe failed: open again at once
    assert breakers.admit(sub) == (10, False)
    clock[0] += 10
    assert breakers.admit(sub) == (0, True)
    breakers.success(sub)  # the probe went through: closed
    assert breakers.admit(sub) == (0, False) and not breakers.is_open(sub) and breakers.open_count == 0

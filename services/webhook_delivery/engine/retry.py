"""When to try a delivery again: the retry schedule with jitter, and a receiver's Retry-After
(honoured on 429 and 503, within bounds)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRY_AFTER_STATUSES = frozenset({429, 503})


def parse_schedule(raw: tuple[str, ...]) -> tuple[float, ...]:
    """HERALD_WEBHOOK_RETRY_SCHEDULE as seconds (floats, so tests can use "0.2")."""
    schedule = tuple(float(step) for step in raw)
    if any(step < 0 for step in schedule):
        raise ValueError("retry delays must not be negative")
    return schedule


def next_delay(
    schedule: tuple[float, ...], attempts_made: int, jitter: float, rng: random.Random | None = None
) -> float | None:
    """Seconds until the next attempt after `attempts_made` attempts; None when the schedule
    is spent (the delivery has failed). Jitter adds 0 to `jitter` of the step, so that many
    deliveries failing together do not all come back at the same moment."""
    if attempts_made < 1 or attempts_made > len(schedule):
        return None
    step = schedule[attempts_made - 1]
    return step * (1 + (rng or random).uniform(0, max(jitter, 0.0)))


def retry_after(value: str | None, maximum: float, now: datetime | None = None) -> float | None:
    """A Retry-After header (delay seconds or an HTTP date) as seconds from now, at most
    `maximum`; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), float(maximum))

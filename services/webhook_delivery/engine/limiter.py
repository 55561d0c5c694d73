"""Subscriptions' rate limits (`rateLimit`: attempts that may start a second, every worker
process together). Before an attempt starts, it takes a slot in its subscription's line of
one-second windows in PostgreSQL (store/rate_windows.py). A slot in the current window: it
starts now. A later one: the delivery waits for that window (next_attempt_at, with the slot
noted on it, so it needs no other then), started by this process's timer (timers.py). Waiting
is not an attempt. A subscription without a limit costs nothing here."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

from services.webhook_delivery.store.rate_windows import USABLE, reserve
from shared.db import Database

# Slots taken per statement: one at low limits (nothing wasted), a fiftieth of the limit from
# 100 a second on (a few statements a second however high the limit; what a process does not
# use before its window ends is lost, never given twice).
BATCH_FROM = 100
BATCH_SHARE = 50


@dataclass(slots=True)
class _Held:
    window: int
    left: int


@dataclass(frozen=True, slots=True)
class Wait:
    window: int  # the Unix second the delivery holds a slot in
    seconds: float  # until then


class RateLimiter:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._held: dict[uuid.UUID, _Held] = {}  # slots reserved here and not yet handed out
        self._locks: dict[uuid.UUID, asyncio.Lock] = {}  # one reservation at a time: in order
        self._offset = 0.0  # PostgreSQL's clock minus this process's

    async def take(self, sub_id: uuid.UUID, limit: int) -> Wait | None:
        """A slot for one attempt: None when it may start now, else the window to wait for."""
        lock = self._locks.setdefault(sub_id, asyncio.Lock())
        async with lock:
            while True:
                now = time.time() + self._offset
                held = self._held.get(sub_id)
                if held is None or held.left <= 0 or held.window + USABLE <= now:
                    want = 1 if limit < BATCH_FROM else limit // BATCH_SHARE
                    async with self.db.connection() as conn:
                        got = await reserve(conn, sub_id, limit, want)
                    self._offset = got.now - time.time()
                    now = got.now
                    held = self._held[sub_id] = _Held(got.window, got.granted)
                held.left -= 1
                if held.window > now:
                    return Wait(held.window, held.window - now)
                if now < held.window + USABLE:
                    return None
                # Taken too late in its window to start within it: let it go, take another.

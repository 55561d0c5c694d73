"""Exact start times: a delivery that this process made wait (a failed attempt's retry, a
circuit's hold, a rate limit's turn) is started by this process when its time comes, from an
in-memory heap on the event loop's clock, instead of at the sweeper's next tick. The timer is
only the fast path: PostgreSQL's `next_attempt_at` stays the truth, the claim's lease decides
who sends it (a duplicate is harmless), and should this process die first, the sweeper finds
the delivery due."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import uuid
from collections.abc import Callable

# Timers one process holds at most. Past it, a new wait is left to the sweeper (late by up to
# HERALD_WEBHOOK_SWEEP_SECONDS, never lost): memory stays bounded however many deliveries wait.
MAX_TIMERS = 100_000
# Fired this much after the due time as the process reckons it: never a claim that finds the
# delivery not due yet (which would leave it to the sweeper).
MARGIN = 0.002

Due = tuple[uuid.UUID, uuid.UUID]  # delivery id, subscription id


class DueTimers:
    def __init__(self, fire: Callable[[list[Due]], None], limit: int = MAX_TIMERS) -> None:
        self.fire = fire  # called with every delivery that has come due, in due order
        self.limit = limit
        self._heap: list[tuple[float, int, uuid.UUID, uuid.UUID]] = []
        self._order = itertools.count()  # ties in due order stay in the order they came
        self._wake: asyncio.TimerHandle | None = None
        self._closed = False

    def __len__(self) -> int:
        return len(self._heap)

    def after(self, seconds: float, delivery_id: uuid.UUID, sub_id: uuid.UUID) -> bool:
        """Start the delivery `seconds` from now (counted from a moment after PostgreSQL's
        now() + `seconds` was written, so never early). False when left to the sweeper."""
        if self._closed or len(self._heap) >= self.limit:
            return False
        loop = asyncio.get_running_loop()
        when = loop.time() + max(seconds, 0.0) + MARGIN
        heapq.heappush(self._heap, (when, next(self._order), delivery_id, sub_id))
        if self._heap[0][0] == when:  # the new earliest: wake for it
            self._arm(loop)
        return True

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._wake is not None:
            self._wake.cancel()
        self._wake = loop.call_at(self._heap[0][0], self._ring) if self._heap else None

    def _ring(self) -> None:
        self._wake = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        due: list[Due] = []
        while self._heap and self._heap[0][0] <= now:
            _when, _n, delivery_id, sub_id = heapq.heappop(self._heap)
            due.append((delivery_id, sub_id))
        self._arm(loop)
        if due:
            self.fire(due)

    def close(self) -> None:
        """Stopping: nothing more fires (the sweepers of the other processes take over)."""
        self._closed = True
        if self._wake is not None:
            self._wake.cancel()
            self._wake = None
        self._heap.clear()

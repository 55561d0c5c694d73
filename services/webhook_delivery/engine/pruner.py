"""Event retention: every domain event is kept HERALD_EVENT_RETENTION (for replay), then
deleted with its delivery log, a bounded batch per transaction, by each worker process now and
then (several cooperate: each skips the rows another holds). An event whose delivery is still
pending stays until that delivery is done: the worker still needs its bytes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from services.webhook_delivery.store.event_repo import EventRepo
from shared.db import Database

log = logging.getLogger("herald.webhook.pruner")

PRUNE_EVERY = 600.0  # seconds between two rounds
PRUNE_BATCH = 1000  # rows deleted per transaction


class Pruner:
    def __init__(self, db: Database, retention: float, batch: int = PRUNE_BATCH) -> None:
        self.db = db
        self.retention = retention
        self.batch = batch

    async def prune_once(self) -> tuple[int, int]:
        """One round: the finished deliveries of events past retention, then those events that
        no delivery needs any more. (deliveries, events) deleted."""
        deliveries = await self._drain(lambda repo: repo.prune_deliveries(self.retention, self.batch))
        events = await self._drain(lambda repo: repo.prune_events(self.retention, self.batch))
        if deliveries or events:
            log.info("pruned %d events and %d deliveries past retention", events, deliveries)
        return deliveries, events

    async def _drain(self, batch: Callable[[EventRepo], Awaitable[int]]) -> int:
        total = 0
        while True:
            async with self.db.transaction() as conn:
                deleted = await batch(EventRepo(conn))
            total += deleted
            if deleted < self.batch:
                return total

    async def run(self) -> None:
        while True:
            try:
                await self.prune_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("pruning past retention failed (again in %g s): %s", PRUNE_EVERY, exc)
            await asyncio.sleep(PRUNE_EVERY)

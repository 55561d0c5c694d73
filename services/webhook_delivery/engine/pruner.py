"""Event retention: every domain event is kept HERALD_EVENT_RETENTION (for replay), then
deleted with its delivery log, a bounded batch per transaction, by each worker process now and
then (several cooperate: each skips the rows another holds). An event whose delivery is still
pending stays until that delivery is done: the worker still needs its bytes."""

from __future__ import annotations

import asyncio
import logging

from services.webhook_delivery.store.event_repo import EventRepo
from shared.db import Database

log = logging.getLogger("herald.webhook.pruner")

PRUNE_EVERY = 600.0  # seconds between two rounds
PRUNE_BATCH = 500  # events deleted per transaction, each with its deliveries and their attempts


class Pruner:
    def __init__(self, db: Database, retention: float, batch: int = PRUNE_BATCH) -> None:
        self.db = db
        self.retention = retention
        self.batch = batch

    async def prune_once(self) -> tuple[int, int]:
        """One round, a batch of events per transaction until none is left: (deliveries,
        events) deleted."""
        deliveries = events = 0
        while True:
            async with self.db.transaction() as conn:
                log_rows, batch = await EventRepo(conn).prune(self.retention, self.batch)
            deliveries, events = deliveries + log_rows, events + batch
            if batch < self.batch:
                break
        if events:
            log.info("pruned %d events and %d deliveries past retention", events, deliveries)
        return deliveries, events

    async def run(self) -> None:
        while True:
            try:
                await self.prune_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("pruning past retention failed (again in %g s): %s", PRUNE_EVERY, exc)
            await asyncio.sleep(PRUNE_EVERY)

"""Successful attempts are recorded in group commits (shared/group_commit.py): every success
that finishes while one statement is being written goes into the next one, so a busy worker
writes a few statements a second instead of one per delivery. A caller returns only once its
attempt is stored."""

from __future__ import annotations

import logging

from services.webhook_delivery.engine.outage import UNAVAILABLE, until_available
from services.webhook_delivery.operational import Reporter
from services.webhook_delivery.store.delivery_repo import Claimed, DeliveryRepo, Outcome
from shared.db import Database
from shared.group_commit import GroupCommit

log = logging.getLogger("herald.webhook.recorder")

BATCH = 500  # attempts per statement at most


class Recorder:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._group: GroupCommit[tuple[Claimed, Outcome]] = GroupCommit(
            self._write, limit=BATCH, unavailable=UNAVAILABLE
        )

    async def success(self, claimed: Claimed, outcome: Outcome) -> None:
        await self._group.submit((claimed, outcome))

    async def _write(self, done: list[tuple[Claimed, Outcome]]) -> None:
        async def store() -> int:
            async with self.db.transaction() as conn:
                recorded = await DeliveryRepo(conn).record_successes(done)
                # A success ends a run of failures: subscription.recovered where the run had
                # raised subscription.failing, in the same commit (operational.py).
                await Reporter(conn, self.db.schema).recovered(c.subscription_id for c, _ in done)
                return recorded

        # Sent already: wait out a database outage rather than send them again later.
        recorded = await until_available(store, f"recording {len(done)} deliveries")
        if recorded < len(done):
            log.warning(
                "%d of %d deliveries moved on before their attempts were recorded",
                len(done) - recorded,
                len(done),
            )

    async def close(self, seconds: float) -> None:
        """Let what is being written finish (bounded: a success not stored is sent again)."""
        await self._group.drain(seconds)

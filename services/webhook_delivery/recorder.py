"""Group commit of successful attempts: every success that finishes while one statement is being
written goes into the next one, so a busy worker writes a few statements a second instead of one
per delivery. A caller returns only once its attempt is stored."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from services.webhook_delivery.deliveries import Claimed, DeliveryRepo, Outcome
from services.webhook_delivery.outage import until_available
from shared.db import Database

log = logging.getLogger("herald.webhook.recorder")

BATCH = 500  # attempts per statement at most


class Recorder:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._waiting: list[tuple[Claimed, Outcome, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def success(self, claimed: Claimed, outcome: Outcome) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((claimed, outcome, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        # Cancelling the caller does not unsend the webhook: the writer stores it regardless.
        await asyncio.shield(done)

    async def _write(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:BATCH], self._waiting[BATCH:]
            done = [(c, o) for c, o, _ in batch]

            async def store(done: list[tuple[Claimed, Outcome]] = done) -> None:
                async with self.db.connection() as conn:
                    await DeliveryRepo(conn).record_successes(done)

            error: BaseException | None = None
            try:
                # Sent already: wait out a database outage rather than send them again later.
                await until_available(store, f"recording {len(batch)} deliveries")
            except Exception as exc:  # the caller logs it; the lease then lets it go again
                error = exc
            for _c, _o, future in batch:
                if not future.done():
                    if error is None:
                        future.set_result(None)
                    else:
                        future.set_exception(error)

    async def close(self, seconds: float) -> None:
        """Let what is being written finish (bounded: a success not stored is sent again)."""
        if self._writer is not None and not self._writer.done():
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._writer), seconds)

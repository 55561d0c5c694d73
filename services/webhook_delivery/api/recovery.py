"""`POST /v2/subscription/{id}/recover` in the background: the request counts the window's
failed and skipped deliveries and answers; a job then re-queues them a page at a time, each
page in one short transaction (made pending, due now on the retry lane) and then put on the
lane. However large the window, no statement, transaction or memory grows with it.

A job that stops mid-way (the process stopping, the database away) is logged, and loses
nothing: what it had not reached is still failed or skipped, to be recovered again; what it had
re-queued but not yet put on the lane is due in PostgreSQL, where the sweeper finds it."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import datetime

from aiohttp import web

from services.webhook_delivery import lanes
from services.webhook_delivery.store.delivery_repo import DeliveryRepo
from shared.amqp import Broker
from shared.appkeys import BROKER, DATABASE
from shared.db import Database

log = logging.getLogger("herald.webhook.recovery")

PAGE = 500  # deliveries re-queued per transaction


class Recoveries:
    """The recovery jobs running in this process."""

    def __init__(self, db: Database, broker: Broker, page: int = PAGE) -> None:
        self.db = db
        self.broker = broker
        self.page = page
        self._jobs: set[asyncio.Task[int]] = set()

    def start(self, sub_id: uuid.UUID, since: datetime, until: datetime, expected: int) -> asyncio.Task[int]:
        """Re-queue the window's failed and skipped deliveries; the task's result is how many."""
        job = asyncio.create_task(self._run(sub_id, since, until, expected))
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)
        return job

    async def _run(self, sub_id: uuid.UUID, since: datetime, until: datetime, expected: int) -> int:
        requeued = 0
        after: tuple[datetime, uuid.UUID] | None = None
        log.info("recovering subscription %s: %d deliveries from %s to %s", sub_id, expected, since, until)
        try:
            while True:
                async with self.db.transaction() as conn:
                    items, after = await DeliveryRepo(conn).recover_page(
                        sub_id, since, until, after, self.page
                    )
                requeued += len(items)
                await lanes.publish(self.broker, items)
                if after is None:
                    break
        except BaseException as exc:
            stopping = isinstance(exc, asyncio.CancelledError)
            log.error(
                "recovering subscription %s stopped after %d of %d deliveries (%s); the rest are"
                " still failed or skipped: recover the window again",
                sub_id,
                requeued,
                expected,
                "the service is stopping" if stopping else exc,
                exc_info=not stopping,
            )
            raise
        log.info("recovered subscription %s: %d deliveries re-queued", sub_id, requeued)
        return requeued

    async def close(self) -> None:
        """Stopping: end the jobs (each logs how far it came)."""
        for job in list(self._jobs):
            job.cancel()
        await asyncio.gather(*self._jobs, return_exceptions=True)


RECOVERIES = web.AppKey("delivery_recoveries", Recoveries)


async def recoveries_ctx(app: web.Application) -> AsyncIterator[None]:
    recoveries = Recoveries(app[DATABASE], app[BROKER])
    app[RECOVERIES] = recoveries
    yield
    await recoveries.close()

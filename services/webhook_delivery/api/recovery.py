"""`recover` and `replay` in the background: the request counts what the window holds and
answers; a job then makes it due a page at a time, each page in one short transaction (due now
on the retry lane) and then put on the lane. However large the window, no statement,
transaction or memory grows with it (a replay holds only its events' ids, at most 10,000).

A job that stops mid-way (the process stopping, the database away) is logged, and loses
nothing: what it had not reached is as it was, to be recovered or replayed again (the log says
how); what it had made due but not yet put on the lane is due in PostgreSQL, where the sweeper
finds it."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from aiohttp import web

from services.webhook_delivery import lanes
from services.webhook_delivery.store.delivery_repo import DeliveryRepo
from shared.amqp import Broker
from shared.appkeys import BROKER, DATABASE
from shared.db import Database

log = logging.getLogger("herald.webhook.recovery")

PAGE = 500  # deliveries made due per transaction

Item = tuple[uuid.UUID, uuid.UUID, str]  # (delivery id, subscription id, lane)


@dataclass(frozen=True, slots=True)
class Job:
    """A window's work. `step(conn, cursor)` does one page in the transaction it is given
    (cursor None: the first page) and returns the deliveries it made due and the next page's
    cursor (None: that was the last); `rest(cursor)` says what is left undone from `cursor`
    on, and what to do about it."""

    name: str  # "recovering subscription <id>"
    unit: str  # what `expected` counts
    expected: int
    scope: str  # "from <since> to <until>"
    step: Callable[[asyncpg.Connection, Any], Awaitable[tuple[list[Item], Any]]]
    rest: Callable[[Any], str]


class Recoveries:
    """The recovery and replay jobs running in this process."""

    def __init__(self, db: Database, broker: Broker, page: int = PAGE) -> None:
        self.db = db
        self.broker = broker
        self.page = page
        self._jobs: set[asyncio.Task[int]] = set()

    def start(self, sub_id: uuid.UUID, since: datetime, until: datetime, expected: int) -> asyncio.Task[int]:
        """Re-queue the window's failed and skipped deliveries; the task's result is how many."""

        async def step(
            conn: asyncpg.Connection, after: tuple[datetime, uuid.UUID] | None
        ) -> tuple[list[Item], Any]:
            return await DeliveryRepo(conn).recover_page(sub_id, since, until, after, self.page)

        return self.run(
            Job(
                f"recovering subscription {sub_id}",
                "deliveries",
                expected,
                f"from {since} to {until}",
                step,
                lambda _after: "the rest are still failed or skipped: recover the window again",
            )
        )

    def run(self, job: Job) -> asyncio.Task[int]:
        task = asyncio.create_task(self._run(job))
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)
        return task

    async def _run(self, job: Job) -> int:
        done = 0
        cursor: Any = None
        log.info("%s: %d %s %s", job.name, job.expected, job.unit, job.scope)
        try:
            while True:
                async with self.db.transaction() as conn:
                    items, following = await job.step(conn, cursor)
                done += len(items)
                await lanes.publish(self.broker, items)
                if following is None:
                    break
                cursor = following
        except BaseException as exc:
            stopping = isinstance(exc, asyncio.CancelledError)
            log.error(
                "%s stopped after %d of %d %s (%s); %s",
                job.name,
                done,
                job.expected,
                job.unit,
                "the service is stopping" if stopping else exc,
                job.rest(cursor),
                exc_info=not stopping,
            )
            raise
        # Fewer than expected: some changed meanwhile (retried on their own, pruned).
        log.info("%s: done, %d of %d %s due again", job.name, done, job.expected, job.unit)
        return done

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

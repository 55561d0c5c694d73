"""Riding out a PostgreSQL outage in a consumer: the message is held (unacked) and the work
retried until the database answers again, instead of being requeued, which would count against
the queue's delivery limit and dead-letter events that a short outage never made invalid."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

log = logging.getLogger("herald.webhook.outage")
T = TypeVar("T")

# Errors that say "the database is away", not "this work is wrong". 55000 is what a database
# that does not accept connections answers; none of the statements retried here can cause it.
# InternalClientError is what a pooled connection raises when it has read the server's FATAL
# (pg_terminate_backend, a restart) but not yet the end of the stream.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.ObjectNotInPrerequisiteStateError,
)


async def until_available(work: Callable[[], Awaitable[T]], what: str, max_wait: float = 5.0) -> T:
    """Run `work` until it does not fail for want of the database (backing off to `max_wait`)."""
    wait = 0.2
    while True:
        try:
            return await work()
        except UNAVAILABLE as exc:
            log.warning("%s: PostgreSQL unavailable (%s); retrying in %.1f s", what, exc, wait)
            await asyncio.sleep(wait)
            wait = min(wait * 2, max_wait)

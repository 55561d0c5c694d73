"""Transactional outbox: an event is written in the same transaction as the change it
describes, and a relay publishes it with broker confirms, then marks it sent. A crash between
the two publishes it again with the same id (at least once, never lost).

The owning service's first migration creates the `outbox` table (see
services/auth/migrations/0001_init.sql): seq, id (the event id), topic, body (the exact bytes
published), headers, created_at, sent_at.

Waking the relay: a write NOTIFYs the channel at commit (`enqueue`), which every replica's relay
LISTENs to. A write made in the process of a running relay may instead wake that relay in
process (`OutboxRelay.wake`, after its commit), without a NOTIFY: a NOTIFY costs PostgreSQL a
global lock at commit and each listener a message, per write. When that relay finds another
replica's relay publishing (the lock taken), it NOTIFYs once for the writes that woke it, so
that the publishing one passes again: no write waits for the poll.

Metrics (on /metrics of the owning service): `herald_outbox_backlog` (unsent rows) and
`herald_outbox_lag_seconds` (age of the oldest unsent row), refreshed by the relay about once a
second, and `herald_outbox_published_total` by topic. Every replica's relay reports the same
table: aggregate the gauges with max(), not sum().
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import KW_ONLY, dataclass
from typing import Any

import asyncpg
import orjson
from prometheus_client import Counter, Gauge

from shared.amqp import Broker
from shared.db import Database
from shared.logging import request_id_var

log = logging.getLogger("herald.outbox")

BACKLOG = Gauge("herald_outbox_backlog", "Outbox rows not yet published", ["schema"])
LAG = Gauge("herald_outbox_lag_seconds", "Age of the oldest unpublished outbox row", ["schema"])
PUBLISHED = Counter(
    "herald_outbox_published_total", "Outbox events the broker confirmed", ["schema", "topic"]
)
METRICS_INTERVAL = 1.0  # seconds between backlog/lag queries, however busy the relay is
DRAIN_SECONDS = 5.0  # how long close() keeps publishing what is left


def notify_channel(schema: str) -> str:
    return f"{schema}_outbox"


def outbox_headers() -> str:
    """The `headers` of an outbox row (JSON): the request id of the work that wrote it."""
    rid = request_id_var.get()
    return orjson.dumps({"x-request-id": rid} if rid else {}).decode()


async def enqueue(conn: asyncpg.Connection, schema: str, event: dict[str, Any]) -> None:
    """Add `event` to the outbox within the caller's transaction; the relay wakes at commit."""
    await conn.execute(
        "INSERT INTO outbox (id, topic, body, headers) VALUES ($1, $2, $3, $4::jsonb)",
        event["id"],
        event["type"],
        orjson.dumps(event),
        outbox_headers(),
    )
    await conn.execute("SELECT pg_notify($1, '')", notify_channel(schema))


class LocalRelay:
    """An app's handle on the relay running in its own process, when one runs (see `wake`)."""

    def __init__(self) -> None:
        self.relay: OutboxRelay | None = None

    def running(self) -> OutboxRelay | None:
        """The relay, if it is running: writes may then `wake` it instead of NOTIFYing."""
        relay = self.relay
        return relay if relay is not None and relay.running else None


@dataclass(eq=False)
class OutboxRelay:
    """Publishes the outbox of `db`'s schema to `exchange`, `batch` rows a pass; passes when
    woken, and every `poll_seconds` anyway; prunes rows sent `retention_seconds` ago."""

    db: Database
    broker: Broker
    exchange: str
    _: KW_ONLY
    batch: int = 200
    poll_seconds: float = 1.0
    retention_seconds: float = 7 * 24 * 3600

    def __post_init__(self) -> None:
        """The relay's own state, apart from what it is given."""
        self._wake = asyncio.Event()
        self._listener: asyncpg.Connection | None = None
        self._last_prune = 0.0
        self._lock_name = f"herald.outbox.{self.db.schema}"
        self._running = False
        self._woken_locally = False  # since the last pass, by a write of this process
        self._locked_out = False  # the last pass found another relay publishing

    @property
    def running(self) -> bool:
        """`run` is relaying: a write of this process may `wake` it instead of NOTIFYing."""
        return self._running

    def wake(self) -> None:
        """After the commit of a write made without NOTIFY (see `running`): pass again now."""
        self._woken_locally = True
        self._wake.set()

    async def relay_once(self) -> int:
        """Publish one batch of unsent events, oldest first; return how many."""
        async with self.db.transaction() as conn:
            # One relay publishes at a time (the others stand by): rows claimed by two replicas
            # at once could reach the broker out of order, and a resource's events must not.
            self._locked_out = not await conn.fetchval(
                "SELECT pg_try_advisory_xact_lock(hashtext($1))", self._lock_name
            )
            if self._locked_out:
                return 0
            rows = await conn.fetch(
                "SELECT seq, id, topic, body, headers FROM outbox WHERE sent_at IS NULL"
                " ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
                self.batch,
            )
            if not rows:
                return 0
            await self.broker.publish_many(
                self.exchange,
                [(row["topic"], row["body"], str(row["id"]), orjson.loads(row["headers"])) for row in rows],
            )
            await self.mark_sent(conn, [row["seq"] for row in rows])
        for row in rows:  # counted once committed: a rolled-back batch is published again
            PUBLISHED.labels(self.db.schema, row["topic"]).inc()
        return len(rows)

    async def mark_sent(self, conn: asyncpg.Connection, seqs: list[int]) -> None:
        """Only after the broker confirmed: dying before this republishes, never loses."""
        await conn.execute("UPDATE outbox SET sent_at = now() WHERE seq = ANY($1::bigint[])", seqs)

    async def observe(self) -> None:
        """Refresh the backlog and lag gauges (the database's clock measures the lag)."""
        async with self.db.connection() as conn:
            backlog, lag = await conn.fetchrow(
                "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8"
                " FROM outbox WHERE sent_at IS NULL"
            )
        BACKLOG.labels(self.db.schema).set(backlog)
        LAG.labels(self.db.schema).set(lag)

    async def _observe_forever(self) -> None:
        # A task of its own: waiting for a pooled connection to measure never delays publishing.
        while True:
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the cancellation
                # that stops the relay when it races the measurement's end (a hung shutdown).
                async with asyncio.timeout(5):
                    await self.observe()
            except Exception as exc:  # the next round tries again
                log.debug("could not measure the outbox: %r", exc)
            await asyncio.sleep(METRICS_INTERVAL)

    async def drain(self, seconds: float = DRAIN_SECONDS) -> int:
        """Publish what is still unsent, for up to `seconds`: at shutdown, the events of writes
        committed just before SIGTERM go out now rather than at the next start."""
        sent = 0
        try:
            async with asyncio.timeout(seconds):
                while batch := await self.relay_once():
                    sent += batch
        except Exception as exc:  # the next start publishes the rest
            log.warning("outbox not drained at shutdown (%d published): %r", sent, exc)
        return sent

    async def prune(self) -> int:
        async with self.db.connection() as conn:
            status = await conn.execute(
                "DELETE FROM outbox WHERE sent_at < now() - make_interval(secs => $1)",
                self.retention_seconds,
            )
        return int(status.split()[-1])

    async def _listen(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        self._listener = await asyncpg.connect(self.db.dsn)
        await self._listener.add_listener(notify_channel(self.db.schema), lambda *_: self._wake.set())

    async def _notify(self) -> None:
        async with self.db.connection() as conn:
            await conn.execute("SELECT pg_notify($1, '')", notify_channel(self.db.schema))

    async def run(self) -> None:
        observer = asyncio.create_task(self._observe_forever())
        self._running = True
        try:
            await self._relay_forever()
        finally:
            self._running = False
            observer.cancel()
            await asyncio.gather(observer, return_exceptions=True)

    async def _relay_forever(self) -> None:
        backoff = 0.5
        while True:
            try:
                await self._listen()
                self._wake.clear()
                woken_locally, self._woken_locally = self._woken_locally, False
                try:
                    sent = await self.relay_once()
                    if self._locked_out and woken_locally:
                        # Another replica's relay is publishing and may have missed this
                        # process's writes (they did not NOTIFY): it passes again on hearing this.
                        await self._notify()
                except BaseException:
                    self._woken_locally |= woken_locally  # the next pass is for them too
                    raise
                backoff = 0.5
                if time.monotonic() - self._last_prune > 60:
                    self._last_prune = time.monotonic()
                    await self.prune()
                if sent == self.batch:
                    continue
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_seconds):
                        await self._wake.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox relay failed, retrying in %.1fs: %s", backoff, exc)
                if self._listener is not None:
                    self._listener.terminate()
                    self._listener = None
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def close(self) -> None:
        """After the `run` task is cancelled: drain (bounded), then drop the LISTEN connection."""
        await self.drain()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.observe(), 2)
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._listener.close(), 5)

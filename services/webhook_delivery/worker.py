"""The delivery worker: takes delivery ids off the two lanes, claims each in PostgreSQL with a
lease (so two workers never send the same attempt at once, and one that dies leaves the lease
to expire), sends it, logs the attempt and decides what comes next. The sweeper puts on the
lanes whatever PostgreSQL says is due and no message carries (lost, held, or a dead worker's)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import uuid
from typing import Any

import orjson
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from services.webhook_delivery import lanes
from services.webhook_delivery.breaker import Breakers
from services.webhook_delivery.deliveries import (
    FAILED,
    PENDING,
    RETRY,
    SUCCEEDED,
    Claimed,
    DeliveryRepo,
)
from services.webhook_delivery.metrics import ATTEMPT_LATENCY, ATTEMPTS, LANE_DEPTH, OPEN_BREAKERS
from services.webhook_delivery.outage import until_available
from services.webhook_delivery.retry import RETRY_AFTER_STATUSES, next_delay, parse_schedule, retry_after
from services.webhook_delivery.sender import Sender
from shared.amqp import Broker
from shared.config import Settings
from shared.db import Database

log = logging.getLogger("herald.webhook.worker")

PARK_LIMIT = 1000  # deliveries one subscription may have waiting in memory for a free slot
SWEEP_BATCH = 500
GONE = "the receiver answered 410 Gone"


class Worker:
    def __init__(self, settings: Settings, db: Database, broker: Broker) -> None:
        self.settings = settings
        self.db = db
        self.broker = broker
        self.schedule = parse_schedule(settings.webhook_retry_schedule)
        self.lease_seconds = settings.webhook_timeout + 5.0
        self.breakers = Breakers(settings.webhook_breaker_failures, settings.webhook_breaker_seconds)
        self.sender = Sender(settings)
        total = max(2, settings.webhook_concurrency)
        # The process-wide cap, taken before the lease: a delivery waiting for a slot (one
        # unparked while the lanes are full) neither holds a lease nor runs its timeout.
        self.slots = asyncio.Semaphore(total)
        # Separate budgets: retries may never take the slots first attempts need.
        self.lane_limits = {"first": total - max(1, total // 4), "retry": max(1, total // 4)}
        self.in_flight: collections.Counter[uuid.UUID] = collections.Counter()
        self.parked: dict[uuid.UUID, collections.deque[uuid.UUID]] = {}
        self.parked_ids: set[uuid.UUID] = set()
        self._channels: list[AbstractChannel] = []
        self._queues: dict[str, tuple[AbstractChannel, AbstractQueue]] = {}
        self._consumers: list[tuple[AbstractQueue, str]] = []
        self._observer: AbstractChannel | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False

    # -- lanes ------------------------------------------------------------------------------

    async def start(self) -> None:
        for lane in lanes.LANES:
            channel = await self.broker.channel(prefetch=self.lane_limits[lane])
            self._channels.append(channel)
            queue = await lanes.declare_lane(self.broker, channel, lane)
            self._queues[lane] = (channel, queue)
            tag = await queue.consume(self._on_message)
            self._consumers.append((queue, tag))

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:  # so that stop() can hand it back
            self._tasks.add(task)
        try:
            await self._handle(message)
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        try:
            body = orjson.loads(message.body)
            delivery_id = uuid.UUID(body["delivery"])
            sub_id = uuid.UUID(body["subscription"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.error("dropping a malformed lane message %s", message.message_id)
            await message.reject(requeue=False)
            return
        try:
            await self.dispatch(delivery_id, sub_id)
        except Exception:
            # The delivery is still due in PostgreSQL: the sweeper brings it back.
            log.exception("delivery %s could not be handled", delivery_id)
        with contextlib.suppress(Exception):
            await message.ack()

    async def dispatch(self, delivery_id: uuid.UUID, sub_id: uuid.UUID) -> None:
        """Attempt now, or hold it: in memory while the subscription is at its cap, in
        PostgreSQL (next_attempt_at) while its circuit is open."""
        if delivery_id in self.parked_ids:
            return
        if self.in_flight[sub_id] >= self.settings.webhook_max_in_flight:
            queue = self.parked.setdefault(sub_id, collections.deque())
            if len(queue) < PARK_LIMIT:
                queue.append(delivery_id)
                self.parked_ids.add(delivery_id)
            else:
                async with self.db.connection() as conn:
                    await DeliveryRepo(conn).defer(delivery_id, self.settings.webhook_sweep_seconds)
            return
        held, probe = self.breakers.admit(sub_id)
        if held > 0:
            async with self.db.connection() as conn:
                await DeliveryRepo(conn).defer(delivery_id, held)
            return
        self.in_flight[sub_id] += 1
        try:
            async with self.slots:
                await self.attempt(delivery_id, sub_id, probe=probe)
        finally:
            self.in_flight[sub_id] -= 1
            if self.in_flight[sub_id] <= 0:
                del self.in_flight[sub_id]
            self._unpark(sub_id)

    def _unpark(self, sub_id: uuid.UUID) -> None:
        queue = self.parked.get(sub_id)
        if self._stopping:
            return  # stop() releases what is still parked
        if not queue:
            self.parked.pop(sub_id, None)
            return
        delivery_id = queue.popleft()
        self.parked_ids.discard(delivery_id)
        task = asyncio.create_task(self._dispatch_parked(delivery_id, sub_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _dispatch_parked(self, delivery_id: uuid.UUID, sub_id: uuid.UUID) -> None:
        try:
            await self.dispatch(delivery_id, sub_id)
        except Exception:
            log.exception("delivery %s could not be handled", delivery_id)

    # -- one attempt ------------------------------------------------------------------------

    async def attempt(self, delivery_id: uuid.UUID, sub_id: uuid.UUID, *, probe: bool = False) -> None:
        async with self.db.connection() as conn:
            repo = DeliveryRepo(conn)
            claimed = await repo.claim(delivery_id, self.lease_seconds)
            if claimed is not None and not claimed.active:
                await repo.skip(delivery_id)  # disabled since fan-out: kept for `recover`
                claimed = None
        if claimed is None:
            if probe:
                self.breakers.released(sub_id)
            return
        try:
            sent = await self.sender.send(claimed)
        except asyncio.CancelledError:
            await self._hand_back(claimed)
            if probe:
                self.breakers.released(sub_id)
            raise
        outcome = sent.outcome
        code = outcome.status_code
        ATTEMPT_LATENCY.observe(outcome.duration_ms / 1000)
        if outcome.error is None and code is not None:
            ATTEMPTS.labels("succeeded").inc()
            self.breakers.success(sub_id)

            async def record_success() -> None:
                async with self.db.connection() as conn:
                    await DeliveryRepo(conn).record(claimed, outcome, SUCCEEDED, None, RETRY)

            # Sent already: wait out a database outage rather than send it again later.
            await until_available(record_success, f"recording delivery {delivery_id}")
            return
        self.breakers.failure(sub_id)
        delay = None if code == 410 else self._delay(claimed, code, sent.retry_after)
        status = PENDING if delay is not None else FAILED
        ATTEMPTS.labels("gone" if code == 410 else "retrying" if delay is not None else "failed").inc()

        async def record_failure() -> None:
            async with self.db.transaction() as conn:
                repo = DeliveryRepo(conn)
                await repo.record(claimed, outcome, status, delay, RETRY)
                if code == 410:
                    await repo.disable(sub_id, GONE)
                elif await repo.subscription_failed(sub_id, self.settings.webhook_disable_after):
                    log.warning("disabled subscription %s: every delivery failed for too long", sub_id)

        await until_available(record_failure, f"recording delivery {delivery_id}")

    def _delay(self, claimed: Claimed, code: int | None, retry_after_header: str | None) -> float | None:
        s = self.settings
        delay = next_delay(self.schedule, claimed.attempts + 1, s.webhook_retry_jitter)
        if delay is not None and code in RETRY_AFTER_STATUSES:
            asked = retry_after(retry_after_header, s.webhook_retry_after_max)
            if asked is not None:
                delay = asked
        return delay

    async def _hand_back(self, claimed: Claimed) -> None:
        """Stopping mid-attempt: give the lease back so that another worker retries it now."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                async with self.db.connection() as conn:
                    await DeliveryRepo(conn).hand_back(claimed.id)

    # -- the sweeper ------------------------------------------------------------------------

    async def sweep_once(self) -> int:
        # A message out longer than this is taken as lost (the sweeper sends another; the
        # lease makes a duplicate harmless).
        requeue_after = max(30.0, 6 * self.settings.webhook_sweep_seconds, self.lease_seconds)
        total = 0
        while True:
            async with self.db.transaction() as conn:
                items = await DeliveryRepo(conn).take_due(SWEEP_BATCH, requeue_after)
            total += await lanes.publish(self.broker, items)
            if len(items) < SWEEP_BATCH:
                return total

    async def run_sweeper(self) -> None:
        while True:
            try:
                await self.sweep_once()
                await self._observe()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("sweep or lane observation failed: %s", exc)
            await asyncio.sleep(self.settings.webhook_sweep_seconds)

    async def _observe(self) -> None:
        OPEN_BREAKERS.set(self.breakers.open_count)
        # A channel of its own: a failed passive declare closes the channel it ran on.
        if self._observer is None or self._observer.is_closed:
            self._observer = await self.broker.channel(prefetch=1)
        for lane, (_channel, queue) in self._queues.items():
            ok = await self._observer.declare_queue(queue.name, passive=True)
            if ok.declaration_result.message_count is not None:
                LANE_DEPTH.labels(lane).set(ok.declaration_result.message_count)

    # -- stopping ---------------------------------------------------------------------------

    async def stop(self, grace: float) -> None:
        """Stop taking messages, let attempts in flight finish for up to `grace` seconds, then
        hand the rest back (their messages return to the lanes when the channels close)."""
        self._stopping = True
        for queue, tag in self._consumers:
            with contextlib.suppress(Exception):
                await queue.cancel(tag)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.parked_ids:  # waiting here only: let the sweepers hand them to other workers now
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2), self.db.connection() as conn:
                    await DeliveryRepo(conn).release(list(self.parked_ids))
        for channel in [*self._channels, *([self._observer] if self._observer else [])]:
            with contextlib.suppress(Exception):
                await channel.close()
        await self.sender.close()

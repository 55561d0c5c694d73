"""The delivery worker. First attempts come straight from this process's fan-out, leased in the
same statement that stored them (`submit`); everything else (retries, redeliveries, what the
fan-out could not take on) comes as delivery ids off the two lanes and is claimed in PostgreSQL
with a lease first. A lease means two workers never send the same attempt at once, and one
that dies leaves it to expire. Each attempt is sent, logged, and decides what comes next. What
no message or worker carries any more, the sweeper (sweeper.py) finds in PostgreSQL."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from services.webhook_delivery import lanes
from services.webhook_delivery.engine.breaker import Breakers
from services.webhook_delivery.engine.index import SubscriptionIndex
from services.webhook_delivery.engine.outage import until_available
from services.webhook_delivery.engine.recorder import Recorder
from services.webhook_delivery.engine.retry import (
    RETRY_AFTER_STATUSES,
    next_delay,
    parse_schedule,
    retry_after,
)
from services.webhook_delivery.engine.sender import Sender
from services.webhook_delivery.metrics import ATTEMPT_LATENCY, ATTEMPTS
from services.webhook_delivery.store.delivery_repo import (
    FAILED,
    PENDING,
    RETRY,
    Claimed,
    DeliveryRepo,
)
from shared.amqp import Broker
from shared.config import Settings
from shared.db import Database

log = logging.getLogger("herald.webhook.worker")

PARK_LIMIT = 1000  # deliveries one subscription may have waiting in memory for a free slot
# Leased deliveries one subscription may have waiting here; the fan-out sends the rest through
# the lanes (unleased), so one slow receiver's backlog never holds leases or the fan-out up.
LEASED_PARK_LIMIT = 100
GONE = "the receiver answered 410 Gone"
SUCCEEDED_ATTEMPTS = ATTEMPTS.labels("succeeded")


class Leased:
    """A delivery the fan-out leased for this worker, with when (to know the lease is still ours)."""

    __slots__ = ("at", "claimed")

    def __init__(self, claimed: Claimed, at: float) -> None:
        self.claimed = claimed
        self.at = at


Parked = uuid.UUID | Leased
Recording = Callable[[], Awaitable[None]]


class Worker:
    def __init__(
        self, settings: Settings, db: Database, broker: Broker, index: SubscriptionIndex | None = None
    ) -> None:
        self.settings = settings
        self.index = index  # to drop a leased delivery whose subscription went away meanwhile
        self.db = db
        self.broker = broker
        self.schedule = parse_schedule(settings.webhook_retry_schedule)
        self.lease_seconds = settings.webhook_timeout + 5.0
        self.breakers = Breakers(settings.webhook_breaker_failures, settings.webhook_breaker_seconds)
        self.sender = Sender(settings)
        total = max(2, settings.webhook_concurrency)
        # The process-wide cap on attempts in flight. A lane delivery takes it before its lease,
        # so that, waiting, it neither holds a lease nor runs its timeout.
        self.slots = asyncio.Semaphore(total)
        # Leased deliveries held in memory (parked or waiting for a slot): past this many, the
        # fan-out waits before taking more events.
        self.room = 2 * total
        self._roomy = asyncio.Event()
        self._roomy.set()
        # Separate budgets: retries may never take the slots first attempts need.
        self.lane_limits = {"first": total - max(1, total // 4), "retry": max(1, total // 4)}
        self.in_flight: collections.Counter[uuid.UUID] = collections.Counter()
        self.parked: dict[uuid.UUID, collections.deque[Parked]] = {}
        self.parked_ids: set[uuid.UUID] = set()
        self.leased: dict[uuid.UUID, Leased] = {}  # leased here and not yet being attempted
        self.recorder = Recorder(db)
        self._channels: list[AbstractChannel] = []
        self._consumers: list[tuple[AbstractQueue, str]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False

    # -- lanes ------------------------------------------------------------------------------

    async def start(self) -> None:
        for lane in lanes.LANES:
            channel = await self.broker.channel(prefetch=self.lane_limits[lane])
            self._channels.append(channel)
            queue = await lanes.declare_lane(self.broker, channel, lane)
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
        """A lane's delivery: attempt it now, or hold it: in memory while the subscription is at
        its cap, in PostgreSQL (next_attempt_at) while its circuit is open."""
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
        self.in_flight[sub_id] += 1
        await self._run(sub_id, delivery_id)

    # -- first attempts from the fan-out ----------------------------------------------------

    async def wait_for_room(self) -> None:
        """Until this process holds few enough leased deliveries to take on more, or stops
        (then it leases nothing more: the fan-out puts every delivery on a lane)."""
        while len(self.leased) >= self.room and not self._stopping:
            self._roomy.clear()
            await self._roomy.wait()

    def wants(self, sub_id: uuid.UUID) -> bool:
        """Whether the fan-out should lease a first attempt for this subscription here."""
        if self._stopping or self.breakers.is_open(sub_id):
            return False
        queue = self.parked.get(sub_id)
        return queue is None or len(queue) < LEASED_PARK_LIMIT

    def submit(self, claimed: Claimed, leased_at: float) -> None:
        """A delivery the fan-out stored leased to this worker: attempt it as soon as the
        subscription's cap allows (no lane message, no claim: it is ours already)."""
        item = Leased(claimed, leased_at)
        self.leased[claimed.id] = item
        sub_id = claimed.subscription_id
        if self._stopping:
            self._spawn(self._hand_back([claimed.id]))
        elif self.in_flight[sub_id] >= self.settings.webhook_max_in_flight:
            self.parked.setdefault(sub_id, collections.deque()).append(item)
        else:
            self.in_flight[sub_id] += 1
            self._spawn(self._run(sub_id, item))

    # -- in flight --------------------------------------------------------------------------

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, sub_id: uuid.UUID, item: Parked) -> None:
        """One delivery of a subscription whose in-flight count was raised for it. The count
        and the slot are given back as soon as the receiver has answered: logging the attempt
        is not the receiver's load."""
        record: Recording | None = None
        try:
            held, probe = self.breakers.admit(sub_id)
            if held > 0:
                await self._hold(item, held)
            else:
                try:
                    async with self.slots:
                        record = await self.attempt(item, sub_id, probe=probe)
                except BaseException:
                    if probe:
                        self.breakers.released(sub_id)
                    raise
        except asyncio.CancelledError:
            raise  # stopping: a leased one stays in self.leased, for stop() to hand back
        except Exception:
            # Still due in PostgreSQL (or leased until it expires): the sweeper brings it back.
            log.exception("delivery %s could not be handled", _id_of(item))
        finally:
            self.in_flight[sub_id] -= 1
            if self.in_flight[sub_id] <= 0:
                del self.in_flight[sub_id]
            self._unpark(sub_id)
        try:
            if record is not None:
                await record()
        except Exception:
            # Sent, not logged: the lease expires and it is sent again (same webhook-id).
            log.exception("delivery %s was sent but could not be recorded", _id_of(item))
        finally:
            self._forget(item)

    def _forget(self, item: Parked) -> None:
        if isinstance(item, Leased):
            self._unlease([item.claimed.id])

    def _unlease(self, ids: list[uuid.UUID]) -> None:
        """No longer held here: a fan-out waiting for room may go on."""
        for delivery_id in ids:
            self.leased.pop(delivery_id, None)
        if len(self.leased) < self.room or self._stopping:
            self._roomy.set()

    async def _hold(self, item: Parked, seconds: float) -> None:
        """The circuit is open: due again when it half-opens, without an attempt."""
        async with self.db.connection() as conn:
            repo = DeliveryRepo(conn)
            if isinstance(item, Leased):
                await repo.hand_back([item.claimed.id], seconds)
            else:
                await repo.defer(item, seconds)

    def _unpark(self, sub_id: uuid.UUID) -> None:
        queue = self.parked.get(sub_id)
        if self._stopping:
            return  # stop() releases what is still parked
        if not queue:
            self.parked.pop(sub_id, None)
            return
        item = queue.popleft()
        if isinstance(item, uuid.UUID):
            self.parked_ids.discard(item)
        self.in_flight[sub_id] += 1
        self._spawn(self._run(sub_id, item))

    # -- one attempt ------------------------------------------------------------------------

    async def attempt(self, item: Parked, sub_id: uuid.UUID, *, probe: bool = False) -> Recording | None:
        """Send it (claiming it first unless it came leased); what is left is to record it."""
        if isinstance(item, Leased):
            claimed: Claimed | None = await self._still_ours(item)
        else:
            async with self.db.connection() as conn:
                repo = DeliveryRepo(conn)
                claimed = await repo.claim(item, self.lease_seconds)
                if claimed is not None and not claimed.active:
                    await repo.skip(item)  # disabled since fan-out: kept for `recover`
                    claimed = None
        if claimed is None:
            if probe:
                self.breakers.released(sub_id)
            return None
        try:
            sent = await self.sender.send(claimed)
        except asyncio.CancelledError:
            await self._hand_back([claimed.id])
            raise
        outcome = sent.outcome
        code = outcome.status_code
        ATTEMPT_LATENCY.observe(outcome.duration_ms / 1000)
        if outcome.error is None and code is not None:
            SUCCEEDED_ATTEMPTS.inc()
            self.breakers.success(sub_id)
            return functools.partial(self.recorder.success, claimed, outcome)
        self.breakers.failure(sub_id)
        delay = None if code == 410 else self._delay(claimed, code, sent.retry_after)
        status = PENDING if delay is not None else FAILED
        ATTEMPTS.labels("gone" if code == 410 else "retrying" if delay is not None else "failed").inc()

        async def record_failure() -> None:
            async with self.db.transaction() as conn:
                repo = DeliveryRepo(conn)
                if not await repo.record_failure(claimed, outcome, status, delay, RETRY):
                    log.warning("delivery %s moved on before this attempt was recorded", claimed.id)
                    return  # recorded already, or another worker's lease: theirs to judge
                if code == 410:
                    await repo.disable(sub_id, GONE)
                elif await repo.subscription_failed(sub_id, self.settings.webhook_disable_after):
                    log.warning("disabled subscription %s: every delivery failed for too long", sub_id)

        return functools.partial(until_available, record_failure, f"recording delivery {claimed.id}")

    async def _still_ours(self, item: Leased) -> Claimed | None:
        """The leased delivery, once its lease surely covers the attempt: renewed when it waited
        here long; let go when it may have expired (the sweeper then hands it to a worker)."""
        if self.index is not None:
            sub = self.index.get(item.claimed.subscription_id)
            if sub is None or not sub.active:  # deleted or disabled while it waited here
                async with self.db.connection() as conn:
                    await DeliveryRepo(conn).skip(item.claimed.id)
                return None
        age = time.monotonic() - item.at
        if age + self.settings.webhook_timeout + 1 < self.lease_seconds:
            return item.claimed
        if age + 1 < self.lease_seconds:
            async with self.db.connection() as conn:
                renewed = await DeliveryRepo(conn).extend_lease(item.claimed, self.lease_seconds)
            if renewed is not None:
                return renewed
        log.warning("delivery %s waited out its lease here; the sweeper sends it", item.claimed.id)
        return None

    def _delay(self, claimed: Claimed, code: int | None, retry_after_header: str | None) -> float | None:
        s = self.settings
        delay = next_delay(self.schedule, claimed.attempts + 1, s.webhook_retry_jitter)
        if delay is not None and code in RETRY_AFTER_STATUSES:
            asked = retry_after(retry_after_header, s.webhook_retry_after_max)
            if asked is not None:
                delay = asked
        return delay

    async def _hand_back(self, ids: list[uuid.UUID]) -> None:
        """Stopping: give leases back without an attempt, so that another worker sends them now."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2), self.db.connection() as conn:
                await DeliveryRepo(conn).hand_back(ids)
        self._unlease(ids)

    # -- stopping ---------------------------------------------------------------------------

    async def stop(self, grace: float) -> None:
        """Stop taking messages, let attempts in flight finish for up to `grace` seconds, then
        hand the rest back (their messages return to the lanes when the channels close)."""
        self._stopping = True
        self._roomy.set()  # a fan-out waiting for room goes on, to the lanes
        for queue, tag in self._consumers:
            with contextlib.suppress(Exception):
                await queue.cancel(tag)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.recorder.close(2)
        if self.parked_ids:  # waiting here only: let the sweepers hand them to other workers now
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2), self.db.connection() as conn:
                    await DeliveryRepo(conn).release(list(self.parked_ids))
        if self.leased:  # leased here and never attempted: due again now, for any worker
            await self._hand_back(list(self.leased))
        for channel in self._channels:
            with contextlib.suppress(Exception):
                await channel.close()
        await self.sender.close()


def _id_of(item: Parked) -> uuid.UUID:
    return item.claimed.id if isinstance(item, Leased) else item

"""The delivery worker. First attempts come straight from this process's fan-out, leased in the
same statement that stored them (`submit`); everything else (retries, redeliveries, what the
fan-out could not take on) comes as delivery ids off the two lanes and is claimed in PostgreSQL
with a lease first. A lease means two workers never send the same attempt at once, and one
that dies leaves it to expire. Each attempt (attempt.py) is sent, logged, and decides what
comes next. What no message or worker carries any more, the sweeper (sweeper.py) finds in
PostgreSQL."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import uuid
from typing import Any

import orjson
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from services.webhook_delivery import lanes
from services.webhook_delivery.engine.attempt import Attempts, Leased, Parked, Recording
from services.webhook_delivery.engine.breaker import Breakers
from services.webhook_delivery.engine.index import SubscriptionIndex
from services.webhook_delivery.engine.recorder import Recorder
from services.webhook_delivery.engine.sender import Sender
from services.webhook_delivery.engine.timers import Due, DueTimers
from services.webhook_delivery.store.delivery_repo import RETRY, Claimed, DeliveryRepo
from shared.amqp import Broker
from shared.config import Settings
from shared.db import Database

log = logging.getLogger("herald.webhook.worker")

PARK_LIMIT = 1000  # deliveries one subscription may have waiting in memory for a free slot
# Leased deliveries one subscription may have waiting here; the fan-out sends the rest through
# the lanes (unleased), so one slow receiver's backlog never holds leases or the fan-out up.
LEASED_PARK_LIMIT = 100


class Worker:
    def __init__(
        self, settings: Settings, db: Database, broker: Broker, index: SubscriptionIndex | None = None
    ) -> None:
        self.settings = settings
        self.db = db
        self.broker = broker
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
        # The retry budget, shared by the retry lane and the retries this process's own timers
        # start (timers.py): attempts past it wait their turn here (for the attempt only, not
        # while it is recorded).
        self.retry_room = asyncio.Semaphore(self.lane_limits["retry"])
        self.timers = DueTimers(self._came_due)
        self.in_flight: collections.Counter[uuid.UUID] = collections.Counter()
        self.parked: dict[uuid.UUID, collections.deque[Parked]] = {}
        self.parked_ids: set[uuid.UUID] = set()
        self.leased: dict[uuid.UUID, Leased] = {}  # leased here and not yet being attempted
        self.recorder = Recorder(db)
        self.attempts = Attempts(
            settings,
            db,
            index,
            self.breakers,
            self.sender,
            self.recorder,
            self.lease_seconds,
            self._hand_back,
            self.timers.after,
        )
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
            tag = await queue.consume(functools.partial(self._on_message, lane))
            self._consumers.append((queue, tag))

    async def _on_message(self, lane: str, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:  # so that stop() can hand it back
            self._tasks.add(task)
        try:
            await self._handle(message, self.retry_room if lane == RETRY else None)
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _handle(self, message: AbstractIncomingMessage, budget: asyncio.Semaphore | None) -> None:
        try:
            body = orjson.loads(message.body)
            delivery_id = uuid.UUID(body["delivery"])
            sub_id = uuid.UUID(body["subscription"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.error("dropping a malformed lane message %s", message.message_id)
            await message.reject(requeue=False)
            return
        try:
            await self.dispatch(delivery_id, sub_id, budget)
        except Exception:
            # The delivery is still due in PostgreSQL: the sweeper brings it back.
            log.exception("delivery %s could not be handled", delivery_id)
        with contextlib.suppress(Exception):
            await message.ack()

    async def dispatch(
        self, delivery_id: uuid.UUID, sub_id: uuid.UUID, budget: asyncio.Semaphore | None = None
    ) -> None:
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
                await self._hold(delivery_id, sub_id, self.settings.webhook_sweep_seconds)
            return
        self.in_flight[sub_id] += 1
        await self._run(sub_id, delivery_id, budget)

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

    async def _run(self, sub_id: uuid.UUID, item: Parked, budget: asyncio.Semaphore | None = None) -> None:
        """One delivery of a subscription whose in-flight count was raised for it. The count
        and the slot are given back as soon as the receiver has answered: logging the attempt
        is not the receiver's load."""
        record: Recording | None = None
        try:
            held, probe = self.breakers.admit(sub_id)
            if held > 0:
                await self._hold(item, sub_id, held)
            else:
                try:
                    async with budget or contextlib.nullcontext(), self.slots:
                        record = await self.attempts.attempt(item, sub_id, probe=probe)
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

    async def _hold(self, item: Parked, sub_id: uuid.UUID, seconds: float) -> None:
        """Not now (the circuit is open, or too many wait here): due again in `seconds`,
        without an attempt, and started by this process's timer then."""
        async with self.db.connection() as conn:
            repo = DeliveryRepo(conn)
            if isinstance(item, Leased):
                await repo.hand_back([item.claimed.id], seconds)
            else:
                await repo.defer(item, seconds)
        self.timers.after(seconds, _id_of(item), sub_id)

    def _came_due(self, due: list[Due]) -> None:
        """Timers rang: each delivery is claimed here like a retry lane's (or finds that
        another worker has it already: the lease decides)."""
        for delivery_id, sub_id in due:
            self._spawn(self._start_due(delivery_id, sub_id))

    async def _start_due(self, delivery_id: uuid.UUID, sub_id: uuid.UUID) -> None:
        try:
            if not self._stopping:
                await self.dispatch(delivery_id, sub_id, self.retry_room)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("delivery %s could not be handled", delivery_id)  # the sweeper's now

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
        self.timers.close()  # what waits for its time is due in PostgreSQL: other sweepers find it
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

"""One attempt at a delivery and what is left after it: claim it (or check a lease the fan-out
took is still ours), send it, count it, feed the subscription's circuit breaker, and hand back
the recording of the outcome (a group-committed success, or a failure with its next try)."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from services.webhook_delivery.engine.breaker import Breakers
from services.webhook_delivery.engine.index import SubscriptionIndex
from services.webhook_delivery.engine.limiter import RateLimiter
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
from services.webhook_delivery.operational import Reporter
from services.webhook_delivery.store.delivery_repo import (
    FAILED,
    PENDING,
    RETRY,
    Claimed,
    DeliveryRepo,
)
from shared.config import Settings
from shared.db import Database

log = logging.getLogger("herald.webhook.worker")

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


class Attempts:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        index: SubscriptionIndex | None,
        breakers: Breakers,
        sender: Sender,
        recorder: Recorder,
        lease_seconds: float,
        hand_back: Callable[[list[uuid.UUID]], Awaitable[None]],
        start_after: Callable[[float, uuid.UUID, uuid.UUID], object],
    ) -> None:
        self.settings = settings
        self.db = db
        self.index = index  # to drop a leased delivery whose subscription went away meanwhile
        self.breakers = breakers
        self.sender = sender
        self.recorder = recorder
        self.lease_seconds = lease_seconds
        self.hand_back = hand_back  # the worker's: a cancelled send gives its lease back
        self.start_after = start_after  # the worker's timers: a retry starts at its due time
        self.limiter = RateLimiter(db)
        self.schedule = parse_schedule(settings.webhook_retry_schedule)

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
        if claimed is not None and not await self._slot(claimed):
            claimed = None  # waits for its rate limit's turn: not an attempt
        if claimed is None:
            if probe:
                self.breakers.released(sub_id)
            return None
        try:
            sent = await self.sender.send(claimed)
        except asyncio.CancelledError:
            await self.hand_back([claimed.id])
            raise
        outcome = sent.outcome
        code = outcome.status_code
        ATTEMPT_LATENCY.observe(outcome.duration_ms / 1000)
        if outcome.error is None and code is not None:
            SUCCEEDED_ATTEMPTS.inc()
            self.breakers.success(sub_id)
            return functools.partial(self.recorder.success, claimed, outcome)
        self.breakers.failure(sub_id)
        circuit_open = self.breakers.is_open(sub_id)
        delay = None if code == 410 else self._delay(claimed, code, sent.retry_after)
        status = PENDING if delay is not None else FAILED
        ATTEMPTS.labels("gone" if code == 410 else "retrying" if delay is not None else "failed").inc()

        async def record_failure() -> None:
            if delay is not None and code != 410 and not circuit_open:
                # The common case, a retry that raises nothing: one statement, so that no lock
                # (the delivery's, its rollup row's, the subscription's) is held across this
                # event loop's turns, which a busy loop would make long for every other failure.
                async with self.db.connection() as conn:
                    recorded, overdue = await DeliveryRepo(conn).record_retry(
                        claimed, outcome, delay, RETRY, self.settings.webhook_disable_after
                    )
                if not recorded:
                    log.warning("delivery %s moved on before this attempt was recorded", claimed.id)
                    return
                if overdue:  # failing for too long: disabled, with its event, in one transaction
                    await until_available(disable_overdue, f"disabling subscription {sub_id}")
                self.start_after(delay, claimed.id, sub_id)
                return
            async with self.db.transaction() as conn:
                repo = DeliveryRepo(conn)
                if not await repo.record_failure(claimed, outcome, status, delay, RETRY):
                    log.warning("delivery %s moved on before this attempt was recorded", claimed.id)
                    return  # recorded already, or another worker's lease: theirs to judge
                if code == 410:
                    disabled = await repo.disable(sub_id, GONE)
                else:
                    disabled = await repo.subscription_failed(sub_id, self.settings.webhook_disable_after)
                    if disabled is not None:
                        log.warning("disabled subscription %s: every delivery failed for too long", sub_id)
                # Operational events, in this transaction (operational.py).
                await Reporter(conn, self.db.schema).after_failure(
                    claimed.id,
                    sub_id,
                    outcome,
                    final=status == FAILED,
                    disabled=disabled,
                    circuit_open=circuit_open,
                )
            if delay is not None:  # committed: due at now() + delay, counted from before now
                self.start_after(delay, claimed.id, sub_id)

        async def disable_overdue() -> None:
            async with self.db.transaction() as conn:
                disabled = await DeliveryRepo(conn).subscription_failed(
                    sub_id, self.settings.webhook_disable_after
                )
                if disabled is not None:
                    log.warning("disabled subscription %s: every delivery failed for too long", sub_id)
                    await Reporter(conn, self.db.schema).after_failure(
                        claimed.id, sub_id, outcome, final=False, disabled=disabled, circuit_open=False
                    )

        return functools.partial(until_available, record_failure, f"recording delivery {claimed.id}")

    async def _slot(self, claimed: Claimed) -> bool:
        """Whether it may start now under its subscription's rate limit; if not, it is handed
        back due at the window where it holds a slot, and this process's timer starts it then."""
        if claimed.rate_limit is None or claimed.has_slot:
            return True
        wait = await self.limiter.take(claimed.subscription_id, claimed.rate_limit)
        if wait is None:
            return True
        async with self.db.connection() as conn:
            await DeliveryRepo(conn).wait_for_slot(claimed, wait.window)
        self.start_after(wait.seconds, claimed.id, claimed.subscription_id)
        return False

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

"""The sweeper: puts on the lanes whatever PostgreSQL says is due and no message or worker
carries (retries come due, lost messages, expired leases), and reports the lanes' depth and the
open circuits on the way."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aio_pika.abc import AbstractChannel

from services.webhook_delivery import lanes
from services.webhook_delivery.engine.breaker import Breakers
from services.webhook_delivery.metrics import LANE_DEPTH, OPEN_BREAKERS
from services.webhook_delivery.store.delivery_repo import DeliveryRepo
from shared.amqp import Broker
from shared.config import Settings
from shared.db import Database

log = logging.getLogger("herald.webhook.worker")

SWEEP_BATCH = 500


class Sweeper:
    def __init__(
        self, settings: Settings, db: Database, broker: Broker, breakers: Breakers, lease_seconds: float
    ) -> None:
        self.settings = settings
        self.db = db
        self.broker = broker
        self.breakers = breakers  # the worker's, for the open-circuit gauge
        self.lease_seconds = lease_seconds
        self._observer: AbstractChannel | None = None

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

    async def run(self) -> None:
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
        for lane in lanes.LANES:
            ok = await self._observer.declare_queue(lanes.queue_name(self.broker, lane), passive=True)
            if ok.declaration_result.message_count is not None:
                LANE_DEPTH.labels(lane).set(ok.declaration_result.message_count)

    async def close(self) -> None:
        if self._observer is not None:
            with contextlib.suppress(Exception):
                await self._observer.close()

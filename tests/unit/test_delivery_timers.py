"""The engine's due-time timers (engine/timers.py) on a real event loop."""

from __future__ import annotations

import asyncio
import uuid

from services.webhook_delivery.engine.timers import Due, DueTimers


async def test_deliveries_fire_in_due_order_once_each() -> None:
    fired: list[Due] = []
    all_fired = asyncio.Event()

    def fire(due: list[Due]) -> None:
        fired.extend(due)
        if len(fired) == 3:
            all_fired.set()

    timers = DueTimers(fire)
    sub = uuid.uuid4()
    late, now, soon = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert timers.after(0.05, late, sub) and timers.after(0, now, sub) and timers.after(0.02, soon, sub)
    assert len(timers) == 3
    await asyncio.wait_for(all_fired.wait(), 30)
    assert fired == [(now, sub), (soon, sub), (late, sub)]
    assert len(timers) == 0


async def test_past_the_limit_or_once_closed_a_wait_is_left_to_the_sweeper() -> None:
    timers = DueTimers(lambda _due: None, limit=1)
    sub = uuid.uuid4()
    assert timers.after(60, uuid.uuid4(), sub)
    assert not timers.after(1, uuid.uuid4(), sub)  # full
    timers.close()
    assert len(timers) == 0 and not timers.after(1, uuid.uuid4(), sub)

"""The worker's process-wide cap on attempts in flight (services/webhook_delivery/slots.py)."""

from __future__ import annotations

import asyncio

import pytest

from services.webhook_delivery.slots import Slots


async def test_slots_cap_and_hand_over_in_arrival_order() -> None:
    slots = Slots(2)
    await slots.take()
    await slots.take()
    order: list[int] = []

    async def waiter(n: int) -> None:
        async with slots:
            order.append(n)
            await asyncio.sleep(0)

    tasks = [asyncio.create_task(waiter(n)) for n in range(3)]
    await asyncio.sleep(0.01)
    assert slots.waiting == 3 and order == []
    slots.give()
    slots.give()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2]
    assert slots.free == 2 and slots.waiting == 0


async def test_a_cancelled_waiter_neither_keeps_nor_loses_a_slot() -> None:
    slots = Slots(1)
    await slots.take()
    first = asyncio.create_task(slots.take())
    second = asyncio.create_task(slots.take())
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert slots.waiting == 1
    slots.give()  # goes to the second, not to the cancelled first
    await asyncio.wait_for(second, 1)
    slots.give()
    assert slots.free == 1


async def test_a_waiter_cancelled_just_after_being_handed_a_slot_passes_it_on() -> None:
    slots = Slots(1)
    await slots.take()
    first = asyncio.create_task(slots.take())
    second = asyncio.create_task(slots.take())
    await asyncio.sleep(0)
    slots.give()  # handed to the first ...
    first.cancel()  # ... which is cancelled before it runs again
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, 1)  # so the second has it
    slots.give()
    assert slots.free == 1 and slots.waiting == 0

"""shared/group_commit.py without I/O: batches, their weight limit, and one item at fault."""

from __future__ import annotations

import asyncio

import pytest

from shared.group_commit import GroupCommit


class Store:
    def __init__(self, bad: set[int] | None = None) -> None:
        self.batches: list[list[int]] = []
        self.bad = bad or set()
        self.writing = asyncio.Event()  # a write is under way
        self.gate = asyncio.Event()  # writes end once it opens
        self.gate.set()

    async def write(self, batch: list[int]) -> None:
        self.writing.set()
        await self.gate.wait()  # items arriving meanwhile go into the next batch
        await asyncio.sleep(0)
        if self.bad & set(batch):
            raise ValueError(f"bad item in {batch}")
        self.batches.append(batch)


async def test_items_arriving_during_a_write_share_the_next_within_the_limit() -> None:
    store = Store()
    store.gate.clear()
    group = GroupCommit(store.write, limit=3)
    first = asyncio.create_task(group.submit(0))
    await store.writing.wait()  # its write is under way
    rest = [asyncio.create_task(group.submit(i)) for i in range(1, 8)]
    await asyncio.sleep(0)  # each has queued its item (submit does so before its first wait)
    store.gate.set()
    await asyncio.gather(first, *rest)
    # The first went at once, alone; the seven that arrived meanwhile in batches of three.
    assert store.batches == [[0], [1, 2, 3], [4, 5, 6], [7]]


async def test_an_item_at_fault_fails_alone() -> None:
    store = Store(bad={2})
    group = GroupCommit(store.write, limit=10)
    outcomes = await asyncio.gather(*(group.submit(i) for i in range(5)), return_exceptions=True)
    assert [o is None for o in outcomes] == [True, True, False, True, True]
    assert isinstance(outcomes[2], ValueError)
    assert sorted(i for batch in store.batches for i in batch) == [0, 1, 3, 4]


async def test_unavailable_fails_the_whole_batch_without_retrying_each() -> None:
    calls: list[list[int]] = []

    async def down(batch: list[int]) -> None:
        calls.append(batch)
        await asyncio.sleep(0.01)
        raise ConnectionError("away")

    group = GroupCommit(down, limit=10, unavailable=(ConnectionError,))
    outcomes = await asyncio.gather(*(group.submit(i) for i in range(4)), return_exceptions=True)
    assert all(isinstance(o, ConnectionError) for o in outcomes)
    assert calls == [[0, 1, 2, 3]]


async def test_a_cancelled_caller_still_has_its_item_written() -> None:
    store = Store()
    group = GroupCommit(store.write, limit=10)
    caller = asyncio.create_task(group.submit(1))
    await asyncio.sleep(0)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await group.drain(1)
    assert store.batches == [[1]]

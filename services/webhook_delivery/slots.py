"""The worker's process-wide cap on attempts in flight: a counting semaphore that also says how
many wait for it (so the fan-out can stop taking events while the backlog is long) and hands a
returned slot straight to the longest waiter (first come, first served)."""

from __future__ import annotations

import asyncio
import collections


class Slots:
    def __init__(self, total: int) -> None:
        self.free = total
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)  # only live waiters: give() pops, a cancelled one removes itself

    async def take(self) -> None:
        if self.free > 0 and not self._waiters:
            self.free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.give()  # handed a slot just as it was cancelled: pass it on
            elif future in self._waiters:
                self._waiters.remove(future)
            raise

    def give(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():  # one cancelled a moment ago has not removed itself yet
                waiter.set_result(None)
                return
        self.free += 1

    async def __aenter__(self) -> None:
        await self.take()

    async def __aexit__(self, *_exc: object) -> None:
        self.give()

"""Group commit: items that arrive while one batch is being written go into the next, written
with one statement (one round trip, one commit) instead of one each. Nothing waits for company:
an item that finds no write under way is written at once. Each caller returns once its item is
written, or raises what writing it raised; when a batch fails, each of its items is written on
its own, so that only the one at fault fails (unless the failure says the database is away,
which would only fail each more slowly)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class GroupCommit(Generic[T]):
    def __init__(
        self,
        write: Callable[[list[T]], Awaitable[None]],
        *,
        limit: int,
        weight: Callable[[T], int] = lambda _item: 1,
        unavailable: tuple[type[BaseException], ...] = (),
    ) -> None:
        """`write(batch)` writes every item of a batch or none; a batch weighs at most `limit`
        (an item heavier than that goes alone). `unavailable`: failures not to retry item by
        item."""
        self._write = write
        self.limit = limit
        self._weight = weight
        self._unavailable = unavailable
        self._waiting: list[tuple[T, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        if self._writer is None or self._writer.done():
            # A context of its own: not that of the caller that happened to start it (its
            # request id, for one).
            self._writer = asyncio.create_task(self._write_waiting(), context=contextvars.Context())
        # A cancelled caller does not take its item back: it is written with the rest.
        await asyncio.shield(done)

    async def _write_waiting(self) -> None:
        while self._waiting:
            weight, taken = 0, 0
            for item, _ in self._waiting:
                weight += self._weight(item)
                if taken and weight > self.limit:
                    break
                taken += 1
            batch, self._waiting = self._waiting[:taken], self._waiting[taken:]
            try:
                try:
                    await self._write([item for item, _ in batch])
                except Exception as exc:
                    if len(batch) == 1 or isinstance(exc, self._unavailable):
                        _settle(batch, exc)
                    else:
                        for one in batch:
                            await self._write_alone(one)
                else:
                    _settle(batch, None)
            except BaseException as exc:  # cancelled: so are the callers still waiting for it
                _settle(batch, exc)
                raise

    async def _write_alone(self, one: tuple[T, asyncio.Future[None]]) -> None:
        try:
            await self._write([one[0]])
        except Exception as exc:
            _settle([one], exc)
        else:
            _settle([one], None)

    async def drain(self, seconds: float) -> None:
        """Let what is being written finish, for up to `seconds`."""
        if self._writer is not None and not self._writer.done():
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._writer), seconds)


def _settle(batch: list[tuple[T, asyncio.Future[None]]], error: BaseException | None) -> None:
    for _item, done in batch:
        if done.done():
            continue
        if error is None:
            done.set_result(None)
        elif isinstance(error, asyncio.CancelledError):
            done.cancel()
        else:
            done.set_exception(error)

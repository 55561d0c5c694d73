"""argon2id password hashing, run off the event loop (a hash takes tens of milliseconds)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from shared.config import Settings


class Passwords:
    def __init__(self, settings: Settings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        # Verified against when the email is unknown, so that both failures take as long.
        self._dummy = self._hasher.hash("herald-timing-equaliser")
        # Each hash holds HERALD_ARGON2_MEMORY_KIB (19 MiB by default) and a core: more at once
        # than there are cores buys no speed, only memory. A login burst queues here instead.
        self._gate = asyncio.Semaphore(max(1, min(4, os.cpu_count() or 1)))

    async def _run(self, fn: Any, *args: Any) -> Any:
        async with self._gate:
            return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def hash(self, password: str) -> str:
        return await self._run(self._hasher.hash, password)

    def _verify(self, stored: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored or self._dummy, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    async def verify(self, stored: str | None, password: str) -> bool:
        """True when `password` matches `stored`; with `stored=None` it spends the same time
        and returns False."""
        return await self._run(self._verify, stored, password)

    def needs_rehash(self, stored: str) -> bool:
        return self._hasher.check_needs_rehash(stored)

"""A write that breaks a unique constraint is a 409 (an email or a URL already taken)."""

from __future__ import annotations

from typing import Any

import asyncpg

from shared.problems import Conflict


async def fetchrow_unique(conn: asyncpg.Connection, conflict: str, query: str, *args: Any) -> Any:
    """`conn.fetchrow(query, *args)`, a unique constraint's violation being a 409 that says
    `conflict`."""
    try:
        return await conn.fetchrow(query, *args)
    except asyncpg.UniqueViolationError:
        raise Conflict(conflict) from None

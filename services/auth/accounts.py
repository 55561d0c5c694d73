"""Changes to a user and the events they publish, in the caller's transaction: one path for the
API's handlers and the operator commands."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.auth.repo import UserRepo, public_user
from shared.events import USER_CREATED, USER_CREDENTIALS_CHANGED, make_event
from shared.outbox import enqueue

SCHEMA = "auth"


async def emit(
    conn: asyncpg.Connection, before: dict[str, Any] | None, after: dict[str, Any], actor: str | None
) -> None:
    """`user.created` for a new user; `user.credentials_changed` when the credential version
    moved (old tokens die at every verifier that hears it)."""
    if before is None:
        await enqueue(conn, SCHEMA, make_event(USER_CREATED, public_user(after), actor))
    elif after["credential_version"] != before["credential_version"]:
        data = {
            "id": str(after["id"]),
            "cv": after["credential_version"],
            "active": after["active"],
            "roles": list(after["roles"]),  # webhook delivery filters by what a subscriber may read
        }
        await enqueue(conn, SCHEMA, make_event(USER_CREDENTIALS_CHANGED, data, actor))


async def save_changes(
    conn: asyncpg.Connection, before: dict[str, Any], changes: dict[str, Any], actor: str | None
) -> dict[str, Any]:
    """Apply `changes` to the user `before` (read FOR UPDATE in this transaction): a credential
    field bumps the credential version, and the event says so."""
    after = await UserRepo(conn).update(before["id"], changes)
    await emit(conn, before, after, actor)
    return after

"""SQL of the auth service: users and login throttling."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from shared.db import Repo
from shared.events import format_time
from shared.problems import NotFound
from shared.unique import fetchrow_unique

EMAIL_TAKEN = "a user with this email already exists"

_USER_COLUMNS = "id, email, name, password_hash, roles, active, credential_version, created_at, updated_at"
IN_FLIGHT_RETRY_SECONDS = 1.0
CREDENTIAL_FIELDS = frozenset({"email", "password_hash", "roles", "active"})


def public_user(row: dict[str, Any]) -> dict[str, Any]:
    """A user as the API shows it: never the hash, never the credential version."""
    return {
        "id": str(row["id"]),
        "email": row["email"],
        "name": row["name"],
        "roles": list(row["roles"]),
        "active": row["active"],
        "createdAt": format_time(row["created_at"]),
        "updatedAt": format_time(row["updated_at"]),
    }


class UserRepo(Repo):
    async def get(self, user_id: str | uuid.UUID, *, for_update: bool = False) -> dict[str, Any]:
        lock = " FOR UPDATE" if for_update else ""
        row = await self.conn.fetchrow(f"SELECT {_USER_COLUMNS} FROM users WHERE id = $1{lock}", user_id)
        if row is None:
            raise NotFound("no such user")
        return dict(row)

    async def by_email(self, email: str, *, for_update: bool = False) -> dict[str, Any] | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await self.conn.fetchrow(
            f"SELECT {_USER_COLUMNS} FROM users WHERE lower(email) = lower($1){lock}", email
        )
        return dict(row) if row else None

    async def any_user(self) -> bool:
        return bool(await self.conn.fetchval("SELECT EXISTS (SELECT 1 FROM users)"))

    async def create(
        self, *, email: str, name: str, password_hash: str, roles: list[str], active: bool = True
    ) -> dict[str, Any]:
        row = await fetchrow_unique(
            self.conn,
            EMAIL_TAKEN,
            f"INSERT INTO users (id, email, name, password_hash, roles, active)"
            f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_USER_COLUMNS}",
            uuid.uuid4(),
            email,
            name,
            password_hash,
            roles,
            active,
        )
        assert row is not None
        return dict(row)

    async def update(self, user_id: str | uuid.UUID, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply column changes; a change to a credential field bumps the credential version
        in the same statement."""
        if not changes:
            return await self.get(user_id)
        sets = [f"{column} = ${i}" for i, column in enumerate(changes, start=2)]
        if CREDENTIAL_FIELDS & changes.keys():
            sets.append("credential_version = credential_version + 1")
        sets.append("updated_at = now()")
        row = await fetchrow_unique(
            self.conn,
            EMAIL_TAKEN,
            f"UPDATE users SET {', '.join(sets)} WHERE id = $1 RETURNING {_USER_COLUMNS}",
            user_id,
            *changes.values(),
        )
        if row is None:
            raise NotFound("no such user")
        return dict(row)

    async def set_password_hash(self, user_id: uuid.UUID, password_hash: str) -> None:
        """A rehash with new argon2 parameters: same password, so no credential change."""
        await self.conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, password_hash)

    async def delete(self, user_id: str | uuid.UUID) -> None:
        if await self.conn.execute("DELETE FROM users WHERE id = $1", user_id) == "DELETE 0":
            raise NotFound("no such user")

    async def other_active_admins(self, user_id: str | uuid.UUID) -> int:
        return int(
            await self.conn.fetchval(
                "SELECT count(*) FROM users WHERE active AND 'admin' = ANY(roles) AND id <> $1", user_id
            )
        )

    async def page(self, after: str | None, limit: int) -> list[dict[str, Any]]:
        rows = await self.conn.fetch(
            f"SELECT {_USER_COLUMNS} FROM users WHERE $1::uuid IS NULL OR id > $1::uuid ORDER BY id LIMIT $2",
            after,
            limit,
        )
        return [dict(r) for r in rows]

    async def credentials(self, user_id: str) -> tuple[int, bool] | None:
        row = await self.conn.fetchrow("SELECT credential_version, active FROM users WHERE id = $1", user_id)
        return (row["credential_version"], row["active"]) if row else None


class ThrottleRepo(Repo):
    """Login attempts per key in PostgreSQL, so that every auth replica sees the same counts.

    An attempt is reserved before the password is checked and settled after: attempts sent
    together cannot all slip past the limit, and successes never count as failures. Call both
    inside a transaction (rows are locked while they change). `now` comes from the caller's
    clock (tests move it instead of waiting)."""

    async def _row(self, key: str, now: datetime) -> asyncpg.Record:
        await self.conn.execute(
            "INSERT INTO login_throttle (key, window_started_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            key,
            now,
        )
        row = await self.conn.fetchrow(
            "SELECT failures, pending, window_started_at, locked_until"
            " FROM login_throttle WHERE key = $1 FOR UPDATE",
            key,
        )
        assert row is not None
        return row

    async def _save(self, key: str, failures: int, pending: int, started: Any, locked_until: Any) -> None:
        await self.conn.execute(
            "UPDATE login_throttle SET failures = $2, pending = $3, window_started_at = $4, locked_until = $5"
            " WHERE key = $1",
            key,
            failures,
            pending,
            started,
            locked_until,
        )

    async def reserve(self, key: str, *, limit: int, window: int, now: datetime) -> float:
        """0 when the attempt may go on (settle it afterwards); otherwise seconds to wait."""
        row = await self._row(key, now)
        locked_until = row["locked_until"]
        if locked_until is not None and locked_until > now:
            return (locked_until - now).total_seconds()
        failures, pending, started = row["failures"], row["pending"], row["window_started_at"]
        if started < now - timedelta(seconds=window):
            # A new window; pending attempts left by a process that died are forgotten too.
            failures, pending, started = 0, 0, now
        if failures + pending >= limit:
            return IN_FLIGHT_RETRY_SECONDS  # the allowance is held by attempts being checked
        await self._save(key, failures, pending + 1, started, None)
        return 0.0

    async def settle(
        self, key: str, *, failed: bool, clear: bool, limit: int, lockout: int, now: datetime
    ) -> None:
        """The reserved attempt's outcome. A failure that reaches `limit` locks the key for
        `lockout` seconds; `clear` (a success) forgets its failures."""
        row = await self._row(key, now)
        locked_until = row["locked_until"]
        failures, pending, started = row["failures"], max(row["pending"] - 1, 0), row["window_started_at"]
        if locked_until is not None and locked_until > now:
            pass  # locked meanwhile: this attempt changes nothing more
        elif failed:
            failures += 1
            if failures >= limit:
                failures, started, locked_until = 0, now, now + timedelta(seconds=lockout)
        elif clear:
            failures = 0
        await self._save(key, failures, pending, started, locked_until)

    async def forget_email(self, email: str) -> None:
        """Drop an email's counters and lock-outs, from every address (a password reset)."""
        await self.conn.execute(
            "DELETE FROM login_throttle WHERE key = 'email:' || $1"
            " OR (key LIKE 'pair:%' AND substr(key, strpos(key, ' ') + 1) = $1)",
            email.lower(),
        )

    async def prune(self, window: int, now: datetime) -> None:
        await self.conn.execute(
            "DELETE FROM login_throttle WHERE window_started_at < $1 AND (locked_until IS NULL OR locked_until < $2)",
            now - timedelta(seconds=window),
            now,
        )


class KnownAddressRepo(Repo):
    """Client addresses each user has logged in from with the right password."""

    async def known(self, email: str, address: str, since: datetime) -> bool:
        """Whether the user with this email logged in from `address` since then. The same one
        query whether or not such a user exists: the answer's timing says nothing about it."""
        return bool(
            await self.conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM login_known_addresses k JOIN users u ON u.id = k.user_id"
                " WHERE lower(u.email) = lower($1) AND k.address = $2 AND k.last_login_at >= $3)",
                email,
                address,
                since,
            )
        )

    async def remember(self, user_id: uuid.UUID, address: str, now: datetime) -> None:
        await self.conn.execute(
            "INSERT INTO login_known_addresses (user_id, address, last_login_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (user_id, address) DO UPDATE SET last_login_at = excluded.last_login_at",
            user_id,
            address,
            now,
        )

    async def prune(self, before: datetime) -> None:
        await self.conn.execute("DELETE FROM login_known_addresses WHERE last_login_at < $1", before)

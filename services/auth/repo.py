"""SQL of the auth service: users and login throttling."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from shared.events import format_time
from shared.problems import Conflict, NotFound

_USER_COLUMNS = "id, email, name, password_hash, roles, active, credential_version, created_at, updated_at"
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


class UserRepo:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def get(self, user_id: str | uuid.UUID, *, for_update: bool = False) -> dict[str, Any]:
        lock = " FOR UPDATE" if for_update else ""
        row = await self.conn.fetchrow(f"SELECT {_USER_COLUMNS} FROM users WHERE id = $1{lock}", user_id)
        if row is None:
            raise NotFound("no such user")
        return dict(row)

    async def by_email(self, email: str) -> dict[str, Any] | None:
        row = await self.conn.fetchrow(
            f"SELECT {_USER_COLUMNS} FROM users WHERE lower(email) = lower($1)", email
        )
        return dict(row) if row else None

    async def any_user(self) -> bool:
        return bool(await self.conn.fetchval("SELECT EXISTS (SELECT 1 FROM users)"))

    async def create(
        self, *, email: str, name: str, password_hash: str, roles: list[str], active: bool = True
    ) -> dict[str, Any]:
        try:
            row = await self.conn.fetchrow(
                f"INSERT INTO users (id, email, name, password_hash, roles, active)"
                f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_USER_COLUMNS}",
                uuid.uuid4(),
                email,
                name,
                password_hash,
                roles,
                active,
            )
        except asyncpg.UniqueViolationError:
            raise Conflict("a user with this email already exists") from None
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
        try:
            row = await self.conn.fetchrow(
                f"UPDATE users SET {', '.join(sets)} WHERE id = $1 RETURNING {_USER_COLUMNS}",
                user_id,
                *changes.values(),
            )
        except asyncpg.UniqueViolationError:
            raise Conflict("a user with this email already exists") from None
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


class ThrottleRepo:
    """Failed-login counters in PostgreSQL, so that every auth replica sees the same counts."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def reserve(self, key: str, *, limit: int, window: int, lockout: int) -> float:
        """Count an attempt before the password is checked, so that attempts sent together
        cannot all slip in before the first failure is counted. Returns 0 when the attempt may
        go on, otherwise the seconds the key stays locked. Past `limit` attempts in `window`
        seconds the key locks for `lockout` seconds (and its count starts again)."""
        value = await self.conn.fetchval(
            """
            INSERT INTO login_throttle AS t (key, failures, window_started_at) VALUES ($1, 1, now())
            ON CONFLICT (key) DO UPDATE SET
                failures = CASE WHEN t.locked_until > now() THEN t.failures
                                WHEN t.window_started_at < now() - make_interval(secs => $2) THEN 1
                                WHEN t.failures + 1 > $3 THEN 0
                                ELSE t.failures + 1 END,
                window_started_at = CASE WHEN t.locked_until > now() THEN t.window_started_at
                                WHEN t.window_started_at < now() - make_interval(secs => $2)
                                     OR t.failures + 1 > $3 THEN now()
                                ELSE t.window_started_at END,
                locked_until = CASE WHEN t.locked_until > now() THEN t.locked_until
                                WHEN t.window_started_at >= now() - make_interval(secs => $2)
                                     AND t.failures + 1 > $3 THEN now() + make_interval(secs => $4)
                                ELSE NULL END
            RETURNING EXTRACT(EPOCH FROM locked_until - now())
            """,
            key,
            float(window),
            limit,
            float(lockout),
        )
        return max(0.0, float(value or 0))

    async def clear(self, key: str) -> None:
        """A success: the email's count starts again."""
        await self.conn.execute("DELETE FROM login_throttle WHERE key = $1", key)

    async def locked_for(self, key: str) -> float:
        """Seconds until `key` is unlocked (0: it is not locked)."""
        value = await self.conn.fetchval(
            "SELECT EXTRACT(EPOCH FROM locked_until - now()) FROM login_throttle"
            " WHERE key = $1 AND locked_until > now()",
            key,
        )
        return float(value or 0)

    async def record_failure(self, key: str, *, limit: int, window: int, lockout: int) -> None:
        """Count a failure after the fact (for client addresses: one address may hold many
        users logging in at once, so its successes must not count against it)."""
        await self.conn.execute(
            """
            INSERT INTO login_throttle AS t (key, failures, window_started_at) VALUES ($1, 1, now())
            ON CONFLICT (key) DO UPDATE SET
                failures = CASE WHEN t.window_started_at < now() - make_interval(secs => $2) THEN 1
                                WHEN t.failures + 1 >= $3 THEN 0
                                ELSE t.failures + 1 END,
                window_started_at = CASE WHEN t.window_started_at < now() - make_interval(secs => $2)
                                         OR t.failures + 1 >= $3 THEN now()
                                    ELSE t.window_started_at END,
                locked_until = CASE WHEN t.window_started_at >= now() - make_interval(secs => $2)
                                         AND t.failures + 1 >= $3 THEN now() + make_interval(secs => $4)
                                    ELSE t.locked_until END
            """,
            key,
            float(window),
            limit,
            float(lockout),
        )

    async def prune(self, window: int) -> None:
        await self.conn.execute(
            "DELETE FROM login_throttle WHERE window_started_at < now() - make_interval(secs => $1)"
            " AND (locked_until IS NULL OR locked_until < now())",
            float(window),
        )

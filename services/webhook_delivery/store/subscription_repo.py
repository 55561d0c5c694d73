"""SQL of the subscriptions table (the API writes it; the delivery worker reads it)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from services.webhook_delivery.store.keyset import after_created, keyset_args
from shared.db import Repo
from shared.events import format_time
from shared.problems import NotFound
from shared.unique import fetchrow_unique

_COLUMNS = (
    "id, owner_id, owner_roles, url, url_key, topics, description, headers, active, disabled_reason,"
    " secret, previous_secret, previous_secret_until, failing_since, version, created_at, updated_at,"
    " filter, rate_limit"
)
_JSONB = frozenset({"headers", "filter"})
DUPLICATE_URL = "you already have a subscription to this URL; change its topics instead"
NOT_FOUND = "no such subscription"


def public_subscription(row: dict[str, Any]) -> dict[str, Any]:
    """A subscription as the API shows it: never its secrets."""
    return {
        "id": str(row["id"]),
        "ownerId": str(row["owner_id"]),
        "url": row["url"],
        "topics": list(row["topics"]),
        "description": row["description"],
        "active": row["active"],
        "headers": row["headers"],
        "filter": row["filter"],
        "rateLimit": row["rate_limit"],
        "disabledReason": row["disabled_reason"],
        "createdAt": format_time(row["created_at"]),
        "updatedAt": format_time(row["updated_at"]),
        "version": row["version"],
    }


def _record(row: asyncpg.Record) -> dict[str, Any]:
    found = dict(row)
    found["headers"] = orjson.loads(found["headers"])
    found["filter"] = _json_or_none(found["filter"])
    return found


def _json_or_none(stored: str | None) -> Any:
    return None if stored is None else orjson.loads(stored)


def _jsonb(value: Any) -> str | None:
    """A value for a jsonb parameter: None stays SQL NULL (not the JSON `null`)."""
    return None if value is None else orjson.dumps(value).decode()


class SubscriptionRepo(Repo):
    """Every method takes the caller's scope: `owner` is the caller's id for a member (someone
    else's subscription then does not exist for them), None for an admin (all of them)."""

    async def get(self, sub_id: uuid.UUID, owner: str | None, *, for_update: bool = False) -> dict[str, Any]:
        lock = " FOR UPDATE" if for_update else ""
        row = await self.conn.fetchrow(
            f"SELECT {_COLUMNS} FROM subscriptions WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2)"
            f"{lock}",
            sub_id,
            owner,
        )
        if row is None:
            raise NotFound(NOT_FOUND)
        return _record(row)

    async def page(
        self, owner: str | None, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[dict[str, Any]]:
        """Oldest first; `after` is the (created_at, id) of the last row of the previous page."""
        rows = await self.conn.fetch(
            f"SELECT {_COLUMNS} FROM subscriptions"
            f" WHERE ($1::uuid IS NULL OR owner_id = $1) AND {after_created(2)}",
            owner,
            *keyset_args(after, limit),
        )
        return [_record(r) for r in rows]

    async def create(
        self,
        *,
        owner_id: str,
        owner_roles: list[str],
        url: str,
        url_key: str,
        topics: list[str],
        description: str,
        headers: dict[str, str],
        active: bool,
        secret: str,
        filter_: dict[str, Any] | None,
        rate_limit: int | None = None,
    ) -> dict[str, Any]:
        row = await fetchrow_unique(
            self.conn,
            DUPLICATE_URL,
            "INSERT INTO subscriptions (id, owner_id, owner_roles, url, url_key, topics, description,"
            " headers, active, secret, filter, rate_limit)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11::jsonb, $12)"
            f" RETURNING {_COLUMNS}",
            uuid.uuid4(),
            owner_id,
            owner_roles,
            url,
            url_key,
            topics,
            description,
            orjson.dumps(headers).decode(),
            active,
            secret,
            _jsonb(filter_),
            rate_limit,
        )
        assert row is not None
        return _record(row)

    async def update(self, sub_id: uuid.UUID, version: int, changes: dict[str, Any]) -> dict[str, Any] | None:
        """Apply column changes to the row at `version` (version + 1); None when the row is no
        longer at that version. Call with the row locked."""
        if not changes:
            return None
        values = [_jsonb(v) if k in _JSONB else v for k, v in changes.items()]
        sets = [
            f"{column} = ${i}::jsonb" if column in _JSONB else f"{column} = ${i}"
            for i, column in enumerate(changes, start=3)
        ]
        sets += ["version = version + 1", "updated_at = now()"]
        row = await fetchrow_unique(
            self.conn,
            DUPLICATE_URL,
            f"UPDATE subscriptions SET {', '.join(sets)} WHERE id = $1 AND version = $2 RETURNING {_COLUMNS}",
            sub_id,
            version,
            *values,
        )
        return _record(row) if row else None

    async def delete(self, sub_id: uuid.UUID, version: int) -> bool:
        return (
            await self.conn.execute(
                "DELETE FROM subscriptions WHERE id = $1 AND version = $2", sub_id, version
            )
            != "DELETE 0"
        )

    async def rotate_secret(self, sub_id: uuid.UUID, secret: str, overlap_seconds: int) -> dict[str, Any]:
        """The current secret becomes the previous one and keeps signing for `overlap_seconds`.
        Not a change of the representation (secrets are not in it): the version stays."""
        row = await self.conn.fetchrow(
            "UPDATE subscriptions SET previous_secret = secret, secret = $2,"
            " previous_secret_until = now() + make_interval(secs => $3)"
            f" WHERE id = $1 RETURNING {_COLUMNS}",
            sub_id,
            secret,
            float(overlap_seconds),
        )
        if row is None:
            raise NotFound(NOT_FOUND)
        return _record(row)


def public_secrets(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    shown: dict[str, Any] = {"secret": row["secret"]}
    until = row["previous_secret_until"]
    if row["previous_secret"] and until is not None and until > now:
        shown["previousSecret"] = row["previous_secret"]
        shown["previousSecretExpiresAt"] = format_time(until)
    return shown

"""SQL for resources, their history and idempotency keys. Rows come back as dicts with `doc`
parsed and `shown` (the stored representation) as JSON text; documents go in as JSON text.

Every write renders the representation once (`documents.representation`) and stores it with the
row, in the same statement: reads answer it as it is (no work per item). Hence the new version
and `updated_at` of a change are chosen here, not by SQL defaults, so that the stored text
carries them."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from services.resource.documents import representation
from services.resource.types import ResourceType
from shared.db import Database, Repo
from shared.group_commit import GroupCommit
from shared.outbox import LocalRelay, notify_channel, outbox_headers

COLUMNS_SQL = "id, type, owner_id, status, version, created_at, updated_at, doc::text AS doc, shown"


def _row(record: asyncpg.Record | None) -> dict[str, Any] | None:
    if record is None:
        return None
    row = dict(record)
    row["doc"] = orjson.loads(row["doc"])
    return row


def new_rows(
    rtype: ResourceType, owner_id: uuid.UUID, status: str | None, docs: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Rows as the table's defaults would make them (version 1, created now), made here so that
    the events can be written in the statement that inserts them; each with its `shown`."""
    now = datetime.now(UTC)
    rows = [
        {
            "id": uuid.uuid4(),
            "type": rtype.name,
            "owner_id": owner_id,
            "status": status,
            "version": 1,
            "created_at": now,
            "updated_at": now,
            "doc": doc,
        }
        for doc in docs
    ]
    for row in rows:
        row["shown"] = stored(representation(rtype, row))
    return rows


def changed_row(
    rtype: ResourceType, row: dict[str, Any], doc: dict[str, Any], status: str | None
) -> dict[str, Any]:
    """`row` after a change of its document or status: the next version, updated now, with its
    `shown` (written by `ResourceRepo.update` only if `row` is still the current version)."""
    new = {
        **row,
        "doc": doc,
        "status": status,
        "version": row["version"] + 1,
        "updated_at": datetime.now(UTC),
    }
    new["shown"] = stored(representation(rtype, new))
    return new


def stored(shown: dict[str, Any]) -> str:
    """The stored text of a representation (what GET and lists answer)."""
    return orjson.dumps(shown).decode()


def search_text(rtype: ResourceType, doc: dict[str, Any]) -> str:
    return " ".join(str(doc[name]) for name in rtype.search if doc.get(name))


_INSERT_WITH_EVENTS = """WITH r AS (
        INSERT INTO resources (id, type, owner_id, status, doc, search, created_at, updated_at, shown)
        SELECT i.id, $1, i.owner_id, i.status, i.doc::jsonb, to_tsvector('simple', i.text), i.at, i.at,
            i.shown::json
        FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::timestamptz[], $6::text[], $7::text[],
            $13::text[]) AS i(id, owner_id, status, at, doc, text, shown)),
    o AS (
        INSERT INTO outbox (id, topic, body, headers)
        SELECT e.id, e.topic, e.body, e.headers::jsonb
        FROM unnest($8::uuid[], $9::text[], $10::bytea[], $11::text[]) AS e(id, topic, body, headers))
    SELECT pg_notify($12, '')"""
# The same without the NOTIFY ($12 unused but typed, so that both take the same arguments).
_INSERT_WITH_EVENTS_QUIET = _INSERT_WITH_EVENTS.replace("SELECT pg_notify($12, '')", "SELECT $12::text")
MAX_ROWS_PER_INSERT = 500  # what one statement of CreateBatcher writes at most
# One create waiting to be written: its rows, their events, its outbox headers.
_Pending = tuple[list[dict[str, Any]], list[dict[str, Any]], str]
# Failures that say the database is away, not that a create is wrong: retrying them one by one
# would only fail more slowly.
_UNAVAILABLE = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.TooManyConnectionsError,
)


class CreateBatcher:
    """Creates of one type that arrive while earlier ones are being written go to PostgreSQL
    together (shared/group_commit.py): ONE statement (atomic on its own) for all of them, one
    round trip and one commit instead of one each (most of a create's cost in PostgreSQL and in
    asyncpg). Each create returns once its rows are committed; one that makes the shared
    statement fail fails alone."""

    def __init__(self, rtype: ResourceType, db: Database, local: LocalRelay | None) -> None:
        """`local`: this process's relay, woken after each commit, when it runs, instead of by
        a NOTIFY (shared/outbox.py)."""
        self.rtype = rtype
        self.db = db
        self.local = local
        self._group: GroupCommit[_Pending] = GroupCommit(
            self._write, limit=MAX_ROWS_PER_INSERT, weight=lambda p: len(p[0]), unavailable=_UNAVAILABLE
        )

    async def insert(self, rows: list[dict[str, Any]], events: list[dict[str, Any]]) -> None:
        """`rows` (as `new_rows` made them) and their events, written once this returns."""
        await self._group.submit((rows, events, outbox_headers()))

    async def _write(self, batch: list[_Pending]) -> None:
        relay = self.local.running() if self.local is not None else None
        try:
            async with self.db.connection() as conn:
                await ResourceRepo(conn, self.rtype).insert_with_events(
                    [row for rows, _, _ in batch for row in rows],
                    [event for _, events, _ in batch for event in events],
                    None if relay is not None else notify_channel(self.db.schema),
                    [headers for rows, _, headers in batch for _ in rows],
                )
        finally:  # even when the answer was lost: the commit may have happened
            if relay is not None:
                relay.wake()


class ResourceRepo:
    def __init__(self, conn: asyncpg.Connection, rtype: ResourceType) -> None:
        self.conn = conn
        self.rtype = rtype

    async def get(self, resource_id: uuid.UUID, *, lock: bool = False) -> dict[str, Any] | None:
        suffix = " FOR UPDATE" if lock else ""
        return _row(
            await self.conn.fetchrow(
                f"SELECT {COLUMNS_SQL} FROM resources WHERE id = $1 AND type = $2{suffix}",
                resource_id,
                self.rtype.name,
            )
        )

    async def insert_with_events(
        self,
        rows: list[dict[str, Any]],
        events: list[dict[str, Any]],
        notify: str | None,
        headers: list[str] | None = None,
    ) -> None:
        """New rows (as `new_rows` made them) and their outbox events in ONE statement: atomic
        without BEGIN and COMMIT, one round trip instead of five (the cost of a create).
        `notify`: the channel to NOTIFY at commit; None when the caller wakes the relay itself
        (shared/outbox.py). `headers`: each event's outbox headers (default: this request's)."""
        await self.conn.execute(
            _INSERT_WITH_EVENTS if notify is not None else _INSERT_WITH_EVENTS_QUIET,
            self.rtype.name,
            [row["id"] for row in rows],
            [row["owner_id"] for row in rows],
            [row["status"] for row in rows],
            [row["created_at"] for row in rows],
            [orjson.dumps(row["doc"]).decode() for row in rows],
            [search_text(self.rtype, row["doc"]) for row in rows],
            [uuid.UUID(event["id"]) for event in events],
            [event["type"] for event in events],
            [orjson.dumps(event) for event in events],
            headers if headers is not None else [outbox_headers()] * len(events),
            notify or "",
            [row["shown"] for row in rows],
        )

    async def get_shown(self, resource_id: uuid.UUID) -> asyncpg.Record | None:
        """What a GET needs: who may see it (status, owner), its ETag (version) and its text."""
        return await self.conn.fetchrow(
            "SELECT status, owner_id, version, shown FROM resources WHERE id = $1 AND type = $2",
            resource_id,
            self.rtype.name,
        )

    async def update(self, current: dict[str, Any], new: dict[str, Any]) -> bool:
        """`new` (from `changed_row`) in place of `current`, only if `current` is still the
        version stored: False after a concurrent change (the caller answers 412)."""
        doc = new["doc"]
        status = await self.conn.execute(
            """UPDATE resources SET doc = $3::jsonb, status = $4, version = $5, updated_at = $6,
                search = to_tsvector('simple', $7), shown = $8::json
            WHERE id = $1 AND version = $2""",
            current["id"],
            current["version"],
            orjson.dumps(doc).decode(),
            new["status"],
            new["version"],
            new["updated_at"],
            search_text(self.rtype, doc),
            new["shown"],
        )
        return status == "UPDATE 1"

    async def delete(self, resource_id: uuid.UUID, version: int) -> bool:
        status = await self.conn.execute(
            "DELETE FROM resources WHERE id = $1 AND version = $2", resource_id, version
        )
        return status == "DELETE 1"

    async def lock_referenced(self, type_name: str, resource_id: str) -> bool:
        """The referenced row exists, and cannot be deleted until this transaction ends."""
        found = await self.conn.fetchval(
            "SELECT 1 FROM resources WHERE id = $1 AND type = $2 FOR KEY SHARE",
            uuid.UUID(resource_id),
            type_name,
        )
        return found is not None

    async def referenced_by(self, resource_id: uuid.UUID, types: Iterable[ResourceType]) -> str | None:
        """The name of a type with a resource that names this one (so it cannot go)."""
        for other in types:
            for name, target in other.references.items():
                if target != self.rtype.name:
                    continue
                found = await self.conn.fetchval(
                    f"SELECT 1 FROM resources WHERE type = '{other.name}' AND (doc -> '{name}') = $1::jsonb LIMIT 1",
                    orjson.dumps(str(resource_id)).decode(),
                )
                if found:
                    return other.name
        return None

    async def page(self, text: str, params: list[Any]) -> list[asyncpg.Record]:
        """A list page's records: (the item's text, its sort keys...), as `ListQuery.select`."""
        return await self.conn.fetch(text, *params)


class HistoryRepo(Repo):
    async def add(
        self,
        resource_id: uuid.UUID,
        actor_id: str,
        from_status: str | None,
        to_status: str,
        comment: str | None,
        request_id: str | None,
    ) -> None:
        await self.conn.execute(
            """INSERT INTO history (resource_id, actor_id, from_status, to_status, comment, request_id)
            VALUES ($1, $2, $3, $4, $5, $6)""",
            resource_id,
            uuid.UUID(actor_id),
            from_status,
            to_status,
            comment,
            request_id,
        )

    async def list(self, resource_id: uuid.UUID) -> list[asyncpg.Record]:
        return await self.conn.fetch(
            "SELECT actor_id, from_status, to_status, comment, request_id, at FROM history"
            " WHERE resource_id = $1 ORDER BY seq",
            resource_id,
        )


class IdempotencyRepo(Repo):
    async def try_lock(self, owner_id: str, key: str) -> bool:
        """Held until the transaction ends: a second request with the key meanwhile is in flight."""
        return bool(
            await self.conn.fetchval(
                "SELECT pg_try_advisory_xact_lock(hashtext($1), hashtext($2))", owner_id, key
            )
        )

    async def find(self, owner_id: str, key: str, ttl: int) -> asyncpg.Record | None:
        return await self.conn.fetchrow(
            "SELECT fingerprint, status, headers::text AS headers, body FROM idempotency_keys"
            " WHERE owner_id = $1 AND key = $2 AND created_at > now() - make_interval(secs => $3)",
            uuid.UUID(owner_id),
            key,
            ttl,
        )

    async def save(
        self, owner_id: str, key: str, fingerprint: bytes, status: int, headers: dict[str, str], body: bytes
    ) -> None:
        await self.conn.execute(
            """INSERT INTO idempotency_keys (owner_id, key, fingerprint, status, headers, body)
            VALUES ($1, $2, $3, $4, $5::jsonb, $6)
            ON CONFLICT (owner_id, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,
                status = EXCLUDED.status, headers = EXCLUDED.headers, body = EXCLUDED.body,
                created_at = now()""",
            uuid.UUID(owner_id),
            key,
            fingerprint,
            status,
            orjson.dumps(headers).decode(),
            body,
        )

    async def prune(self, ttl: int) -> int:
        status = await self.conn.execute(
            "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)", ttl
        )
        return int(status.split()[-1])

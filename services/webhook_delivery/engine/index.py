"""The in-memory subscription index the fan-out matches events against: loaded at start,
refreshed per subscription from the table's NOTIFY channel, and reloaded whole whenever the
listening connection had to be re-made (notifications may have been missed meanwhile)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from services.webhook_delivery.filters import Predicate, compile_filter, stored_filter
from services.webhook_delivery.matching import owner_may_read
from shared.db import Database

log = logging.getLogger("herald.webhook.index")

CHANNEL = "webhook_delivery_subscriptions"
LISTENER_NAME = "herald-webhook-index"
_COLUMNS = "id, owner_id, owner_roles, topics, active, filter"


@dataclass(frozen=True, slots=True)
class IndexedSubscription:
    id: uuid.UUID
    owner_id: str
    owner_roles: frozenset[str]
    topics: tuple[str, ...]
    active: bool
    # Whether an event envelope passes the subscription's filter.
    passes_filter: Predicate = field(default=compile_filter(None), compare=False)

    @classmethod
    def from_row(cls, row: Any) -> IndexedSubscription:
        return cls(
            id=row["id"],
            owner_id=str(row["owner_id"]),
            owner_roles=frozenset(row["owner_roles"]),
            topics=tuple(row["topics"]),
            active=row["active"],
            passes_filter=stored_filter(row["id"], row["filter"]),
        )

    def may_read(self, topic: str, data: dict[str, Any]) -> bool:
        return owner_may_read(topic, data, self.id, self.owner_id, self.owner_roles)


class SubscriptionIndex:
    """topic -> subscriptions, by exact name, by `<family>.*` pattern, and `*`."""

    def __init__(self) -> None:
        self._subs: dict[uuid.UUID, IndexedSubscription] = {}
        self._exact: dict[str, set[uuid.UUID]] = {}
        self._family: dict[str, set[uuid.UUID]] = {}
        self._everything: set[uuid.UUID] = set()
        self.loaded = asyncio.Event()

    def get(self, sub_id: uuid.UUID) -> IndexedSubscription | None:
        return self._subs.get(sub_id)

    def _buckets(self, topic: str) -> set[uuid.UUID]:
        if topic == "*":
            return self._everything
        if topic.endswith(".*"):
            return self._family.setdefault(topic[:-2], set())
        return self._exact.setdefault(topic, set())

    def put(self, sub: IndexedSubscription) -> None:
        self.remove(sub.id)
        self._subs[sub.id] = sub
        for topic in sub.topics:
            self._buckets(topic).add(sub.id)

    def remove(self, sub_id: uuid.UUID) -> None:
        old = self._subs.pop(sub_id, None)
        if old is not None:
            for topic in old.topics:
                self._buckets(topic).discard(sub_id)

    def replace_all(self, subs: Iterable[IndexedSubscription]) -> None:
        self._subs.clear()
        self._exact.clear()
        self._family.clear()
        self._everything.clear()
        for sub in subs:
            self.put(sub)

    def match(self, topic: str) -> list[IndexedSubscription]:
        """Every subscription (active or not) whose topics cover `topic`."""
        ids = set(self._exact.get(topic, ()))
        ids.update(self._family.get(topic.split(".", 1)[0], ()))
        ids.update(self._everything)
        return [self._subs[i] for i in ids]


class IndexRefresher:
    """Keeps a SubscriptionIndex current from PostgreSQL."""

    def __init__(self, db: Database, index: SubscriptionIndex, *, retry_seconds: float = 1.0) -> None:
        self.db = db
        self.index = index
        self.retry_seconds = retry_seconds
        self._listener: asyncpg.Connection | None = None
        self._changed: asyncio.Queue[str] = asyncio.Queue()
        self._lost = asyncio.Event()

    async def start(self) -> None:
        """Listen, then load everything (a change between the two arrives as a notification)."""
        await self._connect()

    async def _connect(self) -> None:
        self._lost.clear()
        listener = await asyncpg.connect(
            self.db.dsn, server_settings={"search_path": self.db.schema, "application_name": LISTENER_NAME}
        )
        try:
            listener.add_termination_listener(lambda _conn: self._lost.set())
            await listener.add_listener(
                CHANNEL, lambda _c, _pid, _ch, payload: self._changed.put_nowait(payload)
            )
            async with self.db.connection() as conn:
                rows = await conn.fetch(f"SELECT {_COLUMNS} FROM subscriptions")
        except BaseException:
            # Closed here, not left to the garbage collector: every retry would hold one more.
            listener.terminate()
            raise
        self._listener = listener
        self.index.replace_all(IndexedSubscription.from_row(r) for r in rows)
        self.index.loaded.set()
        log.info("subscription index loaded: %d subscriptions", len(rows))

    async def refresh(self, sub_id: uuid.UUID) -> None:
        async with self.db.connection() as conn:
            row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM subscriptions WHERE id = $1", sub_id)
        if row is None:
            self.index.remove(sub_id)
        else:
            self.index.put(IndexedSubscription.from_row(row))

    async def run(self) -> None:
        while True:
            try:
                if self._listener is None or self._listener.is_closed() or self._lost.is_set():
                    await self._close_listener()
                    await self._connect()
                changed = asyncio.ensure_future(self._changed.get())
                lost = asyncio.ensure_future(self._lost.wait())
                try:
                    await asyncio.wait((changed, lost), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    lost.cancel()
                    if not changed.done():
                        changed.cancel()
                if changed.done() and not changed.cancelled():
                    payload = changed.result()
                    with contextlib.suppress(ValueError):
                        await self.refresh(uuid.UUID(payload))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("subscription index refresh failed; reloading: %s", exc)
                self._lost.set()
                await asyncio.sleep(self.retry_seconds)

    async def _close_listener(self) -> None:
        if self._listener is not None:
            listener, self._listener = self._listener, None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(listener.close(), 2)

    async def close(self) -> None:
        await self._close_listener()

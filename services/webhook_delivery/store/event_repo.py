"""SQL of the stored domain events beyond the fan-out: replaying a window of them to one
subscription, and pruning them (with their delivery log) once past retention."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from services.webhook_delivery.store.delivery_repo import RETRY
from shared.db import Repo


class EventRepo(Repo):
    # -- replay -----------------------------------------------------------------------------

    async def replay_subscription(self, sub_id: uuid.UUID) -> Any:
        """What replay matches events against: the subscription's topics, filter, owner and
        the owner's roles."""
        return await self.conn.fetchrow(
            "SELECT topics, filter, owner_id, owner_roles FROM subscriptions WHERE id = $1", sub_id
        )

    async def window(
        self, topics: list[str], since: datetime, until: datetime, limit: int
    ) -> list[tuple[datetime, uuid.UUID]]:
        """The events of these topics created in [since, until), oldest first: (created at, id),
        at most `limit` (more than `limit - 1` means the window is too large). Unordered in SQL,
        so that the scan stops at the limit; sorted here."""
        rows = await self.conn.fetch(
            "SELECT created_at, id FROM webhook_events"
            " WHERE topic = ANY($1::text[]) AND created_at >= $2 AND created_at < $3 LIMIT $4",
            topics,
            since,
            until,
            limit,
        )
        return sorted((r["created_at"], r["id"]) for r in rows)

    async def bodies(self, event_ids: list[uuid.UUID]) -> list[tuple[uuid.UUID, str, bytes]]:
        """(id, topic, body) of these events (those still stored)."""
        rows = await self.conn.fetch(
            "SELECT id, topic, body FROM webhook_events WHERE id = ANY($1::uuid[])", event_ids
        )
        return [(r["id"], r["topic"], bytes(r["body"])) for r in rows]

    async def replay(
        self, sub_id: uuid.UUID, replay_id: uuid.UUID, event_ids: list[uuid.UUID]
    ) -> list[tuple[uuid.UUID, uuid.UUID, str]]:
        """New deliveries of these events to the subscription, due now on the retry lane (a
        replay is bulk work: first attempts of new events keep their lane): (delivery id,
        subscription id, lane). The events are locked against pruning meanwhile; one pruned
        already is left out, and so is everything when the subscription was deleted."""
        rows = await self.conn.fetch(
            "WITH e AS (SELECT id, topic FROM webhook_events WHERE id = ANY($2::uuid[]) FOR KEY SHARE)"
            " INSERT INTO deliveries (id, subscription_id, event_id, topic, status, lane, next_attempt_at,"
            "  enqueued_at, replay_id)"
            " SELECT gen_random_uuid(), s.id, e.id, e.topic, 'pending', $4, now(), now(), $3"
            " FROM e JOIN subscriptions s ON s.id = $1"
            " RETURNING id",
            sub_id,
            event_ids,
            replay_id,
            RETRY,
        )
        return [(r["id"], sub_id, RETRY) for r in rows]

    # -- retention --------------------------------------------------------------------------

    async def prune(self, retention: float, limit: int) -> tuple[int, int]:
        """Delete up to `limit` events older than `retention` seconds with their delivery log,
        and move the mark of what was pruned on: (deliveries, events) deleted. An event with a
        pending delivery stays (the worker still needs its bytes); so does one a replay is
        making deliveries of (locked)."""
        row = await self.conn.fetchrow(
            "WITH old AS ("
            " SELECT e.id FROM webhook_events e WHERE e.created_at < now() - make_interval(secs => $1)"
            "  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.status = 'pending')"
            " LIMIT $2 FOR UPDATE SKIP LOCKED),"
            " log AS (DELETE FROM deliveries d USING old WHERE d.event_id = old.id RETURNING 1),"
            " gone AS (DELETE FROM webhook_events e USING old WHERE e.id = old.id RETURNING e.created_at),"
            " mark AS ("
            " INSERT INTO events_pruned (through) SELECT max(created_at) FROM gone HAVING count(*) > 0"
            " ON CONFLICT (only_row) DO UPDATE"
            "  SET through = greatest(events_pruned.through, excluded.through))"
            " SELECT (SELECT count(*) FROM log) AS deliveries, (SELECT count(*) FROM gone) AS events",
            retention,
            limit,
        )
        assert row is not None
        return row["deliveries"], row["events"]

    async def pruned_through(self) -> datetime | None:
        """The newest event pruned so far (None: none was)."""
        moment: datetime | None = await self.conn.fetchval("SELECT through FROM events_pruned")
        return moment

"""SQL of webhook delivery: stored events, deliveries, their attempts, and the few subscription
columns the worker changes (failure run, disabling, the owner's roles)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from services.webhook_delivery.store.keyset import after_created, keyset_args
from services.webhook_delivery.store.rate_windows import USABLE
from shared.db import Repo
from shared.events import format_time
from shared.problems import Conflict, NotFound

PENDING, SUCCEEDED, FAILED, SKIPPED = "pending", "succeeded", "failed", "skipped"
FIRST, RETRY = "first", "retry"
RESPONSE_KEEP = 1024  # bytes of each response kept in the attempt log
_DELIVERY_COLUMNS = (
    "id, subscription_id, event_id, topic, status, lane, attempts, next_attempt_at,"
    " last_status_code, last_error, created_at, updated_at"
)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery a worker holds the lease on, with what it needs to send it. The lease is known
    by when it ends (`lease_until`, to the microsecond): a claim is taken only once the previous
    lease has ended, so a later one never ends at the same moment. Its attempt is recorded only
    while that lease is still the delivery's and `attempts` unchanged (see `record_failure`)."""

    id: uuid.UUID
    subscription_id: uuid.UUID
    event_id: uuid.UUID
    attempts: int
    lease_until: datetime
    body: bytes
    url: str
    headers: dict[str, str]
    secrets: tuple[str, ...]
    active: bool
    due_at: datetime | None = None  # when this attempt was due (its next_attempt_at)
    rate_limit: int | None = None  # the subscription's attempts a second, if limited
    has_slot: bool = False  # it waited for a rate-limit slot and holds one now


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt came to."""

    status_code: int | None
    duration_ms: float
    error: str | None
    response_body: str
    attempted_at: datetime


@dataclass(slots=True)
class FannedOut:
    """What storing one event's deliveries came to."""

    leased: list[Claimed] = field(default_factory=list)  # ours to send now
    to_lane: list[tuple[uuid.UUID, uuid.UUID, str]] = field(default_factory=list)
    skipped: int = 0


# A failed attempt logged and its delivery moved on: to status $2 (pending: due again in $4
# seconds on lane $3), only while pending under the lease and attempt count that started it.
_FAILED_ATTEMPT = (
    "WITH d AS ("
    " UPDATE deliveries SET status = $2, attempts = attempts + 1,"
    " lane = CASE WHEN $2 = 'pending' THEN $3 ELSE lane END,"
    " next_attempt_at = CASE WHEN $2 = 'pending' THEN now() + make_interval(secs => $4) END,"
    " lease_until = NULL, enqueued_at = NULL, last_status_code = $5, last_error = $6,"
    " updated_at = now()"
    " WHERE id = $1 AND status = 'pending' AND attempts = $10 AND lease_until = $11"
    " RETURNING id, subscription_id),"
    " a AS (INSERT INTO delivery_attempts"
    " (delivery_id, attempted_at, status_code, duration_ms, error, response_body, due_at)"
    " SELECT id, $7, $5, $8, $6, $9, $12 FROM d RETURNING true)"
)


def _failed_attempt_args(
    claimed: Claimed, outcome: Outcome, status: str, lane: str, retry_in: float | None
) -> tuple[Any, ...]:
    return (
        claimed.id,
        status,
        lane,
        retry_in or 0.0,
        outcome.status_code,
        outcome.error,
        outcome.attempted_at,
        outcome.duration_ms,
        outcome.response_body,
        claimed.attempts,
        claimed.lease_until,
        claimed.due_at,
    )


class DeliveryRepo(Repo):
    # -- fan-out ----------------------------------------------------------------------------

    async def fan_out(
        self,
        event_id: uuid.UUID,
        topic: str,
        body: bytes,
        rows: list[tuple[uuid.UUID, uuid.UUID, str]],
        *,
        leased: Collection[uuid.UUID] = (),
        lease_seconds: float = 0.0,
    ) -> FannedOut | None:
        """Store the event and its deliveries in one statement (so atomically): (delivery id,
        subscription id, status) rows. A pending one whose subscription is no longer active is
        stored skipped. The pending ones in `leased` are stored with this worker's lease taken
        (it sends them itself, no lane message), the others due now and on a lane. None, and
        nothing written, when the event was stored before (a redelivered message)."""
        records = await self.conn.fetch(
            "WITH e AS ("
            " INSERT INTO webhook_events (id, topic, body) VALUES ($1, $2, $3)"
            " ON CONFLICT (id) DO NOTHING RETURNING id),"
            " t AS ("
            " SELECT t.d, t.s, t.l, t.st = 'pending' AND s.active AS p"
            " FROM unnest($4::uuid[], $5::uuid[], $6::text[], $7::bool[]) AS t (d, s, st, l)"
            # A subscription deleted since the index matched it is simply left out.
            " JOIN subscriptions s ON s.id = t.s),"
            " d AS ("
            " INSERT INTO deliveries (id, subscription_id, event_id, topic, status, next_attempt_at,"
            "  enqueued_at, lease_until)"
            " SELECT t.d, t.s, e.id, $2, CASE WHEN t.p THEN 'pending' ELSE 'skipped' END,"
            "  CASE WHEN t.p THEN now() END, CASE WHEN t.p AND NOT t.l THEN now() END,"
            "  CASE WHEN t.p AND t.l THEN now() + make_interval(secs => $8) END"
            " FROM e, t"
            " ON CONFLICT (subscription_id, event_id) WHERE replay_id IS NULL DO NOTHING"
            " RETURNING id, subscription_id, status, lease_until, next_attempt_at)"
            " SELECT d.id, d.subscription_id, d.status, d.lease_until, d.next_attempt_at, s.url,"
            "  s.headers, s.rate_limit, s.secret,"
            "  s.previous_secret, s.previous_secret_until > now() AS previous_signs"
            " FROM e LEFT JOIN d ON true"
            " LEFT JOIN subscriptions s ON s.id = d.subscription_id AND d.lease_until IS NOT NULL",
            event_id,
            topic,
            body,
            [r[0] for r in rows],
            [r[1] for r in rows],
            [r[2] for r in rows],
            [r[0] in leased for r in rows],
            lease_seconds,
        )
        if not records:
            return None
        result = FannedOut()
        for r in records:
            if r["id"] is None:
                continue  # stored, but every subscription it matched was deleted meanwhile
            if r["status"] != PENDING:
                result.skipped += 1
            elif r["lease_until"] is not None:
                result.leased.append(_claimed(r, event_id, body, attempts=0))
            else:
                result.to_lane.append((r["id"], r["subscription_id"], FIRST))
        return result

    async def unsent_of(self, event_id: uuid.UUID) -> list[tuple[uuid.UUID, uuid.UUID, str]]:
        """The event's deliveries that are due and that no worker holds: (id, subscription, lane)."""
        rows = await self.conn.fetch(
            "SELECT id, subscription_id, lane FROM deliveries WHERE event_id = $1 AND status = 'pending'"
            " AND next_attempt_at <= now() AND (lease_until IS NULL OR lease_until < now())",
            event_id,
        )
        return [(r["id"], r["subscription_id"], r["lane"]) for r in rows]

    # -- the worker -------------------------------------------------------------------------

    async def claim(self, delivery_id: uuid.UUID, lease_seconds: float) -> Claimed | None:
        """Take the lease on a due, pending delivery nobody holds; None when it is not ours to
        send (done, not due yet, or another worker's attempt is under way)."""
        row = await self.conn.fetchrow(
            "WITH c AS ("
            " UPDATE deliveries SET lease_until = now() + make_interval(secs => $2), enqueued_at = NULL"
            " WHERE id = $1 AND status = 'pending' AND next_attempt_at <= now()"
            "  AND (lease_until IS NULL OR lease_until < now())"
            " RETURNING id, subscription_id, event_id, attempts, lease_until, next_attempt_at, rate_slot)"
            " SELECT c.*, e.body, s.url, s.headers, s.active, s.secret, s.previous_secret,"
            "  s.previous_secret_until > now() AS previous_signs, s.rate_limit,"
            # Its slot counts only while its window lasts (and it was deferred for it, not since).
            "  c.next_attempt_at = to_timestamp(c.rate_slot)"
            "  AND clock_timestamp() < to_timestamp(c.rate_slot + $3::float8) AS has_slot"
            " FROM c JOIN webhook_events e ON e.id = c.event_id"
            " JOIN subscriptions s ON s.id = c.subscription_id",
            delivery_id,
            lease_seconds,
            USABLE,
        )
        if row is None:
            return None
        return _claimed(
            row, row["event_id"], bytes(row["body"]), attempts=row["attempts"], active=row["active"]
        )

    async def defer(self, delivery_id: uuid.UUID, seconds: float) -> None:
        """Hold a pending delivery without an attempt (breaker open, subscription at its cap)."""
        await self.conn.execute(
            "UPDATE deliveries SET next_attempt_at = now() + make_interval(secs => $2),"
            " lease_until = NULL, enqueued_at = NULL, updated_at = now()"
            " WHERE id = $1 AND status = 'pending' AND (lease_until IS NULL OR lease_until < now())",
            delivery_id,
            seconds,
        )

    async def hand_back(self, delivery_ids: list[uuid.UUID], seconds: float = 0.0) -> None:
        """Give up our leases without an attempt: due again in `seconds` (0: another worker may
        send them right away; more: the subscription's circuit is open)."""
        await self.conn.execute(
            "UPDATE deliveries SET lease_until = NULL, enqueued_at = NULL,"
            " next_attempt_at = now() + make_interval(secs => $2), updated_at = now()"
            " WHERE id = ANY($1::uuid[]) AND status = 'pending'",
            delivery_ids,
            seconds,
        )

    async def wait_for_slot(self, claimed: Claimed, window: int) -> None:
        """Give up our lease without an attempt: due again at the start of `window` (a Unix
        second), in which it holds a rate-limit slot."""
        await self.conn.execute(
            "UPDATE deliveries SET lease_until = NULL, enqueued_at = NULL, rate_slot = $3::bigint,"
            " next_attempt_at = to_timestamp($3::bigint), updated_at = now()"
            " WHERE id = $1 AND status = 'pending' AND lease_until = $2",
            claimed.id,
            claimed.lease_until,
            window,
        )

    async def extend_lease(self, claimed: Claimed, lease_seconds: float) -> Claimed | None:
        """Renew a lease this worker still holds: the delivery with its new lease, or None when
        the lease is no longer this one (or has run out)."""
        until = await self.conn.fetchval(
            "UPDATE deliveries SET lease_until = now() + make_interval(secs => $2)"
            " WHERE id = $1 AND status = 'pending' AND lease_until = $3 AND lease_until > now()"
            " RETURNING lease_until",
            claimed.id,
            lease_seconds,
            claimed.lease_until,
        )
        return None if until is None else replace(claimed, lease_until=until)

    async def release(self, delivery_ids: list[uuid.UUID]) -> None:
        """No message carries these any more (a stopping worker held them in memory)."""
        await self.conn.execute(
            "UPDATE deliveries SET enqueued_at = NULL WHERE id = ANY($1::uuid[]) AND status = 'pending'",
            delivery_ids,
        )

    async def skip(self, delivery_id: uuid.UUID) -> None:
        """Its subscription was disabled before it went out: keep it for `recover`."""
        await self.conn.execute(
            "UPDATE deliveries SET status = 'skipped', next_attempt_at = NULL, lease_until = NULL,"
            " enqueued_at = NULL, updated_at = now() WHERE id = $1 AND status = 'pending'",
            delivery_id,
        )

    async def record_failure(
        self, claimed: Claimed, outcome: Outcome, status: str, retry_in: float | None, lane: str
    ) -> bool:
        """Log a failed attempt and move the delivery on, in one statement: `status` (pending or
        failed), and when still pending, due again in `retry_in` seconds on `lane`. Successes
        are recorded many at a time (`record_successes`).

        Only the attempt that `claimed` started is recorded, once: while the delivery is still
        pending under that lease with that attempt count. A write that comes late (held up by
        an outage, replayed after a lost answer) finds the delivery moved on, recorded or sent
        by another worker since, and changes nothing: False."""
        return bool(
            await self.conn.fetchval(
                _FAILED_ATTEMPT + " SELECT EXISTS (SELECT 1 FROM a)",
                *_failed_attempt_args(claimed, outcome, status, lane, retry_in),
            )
        )

    async def record_retry(
        self, claimed: Claimed, outcome: Outcome, retry_in: float, lane: str, disable_after: float
    ) -> tuple[bool, bool]:
        """A failed attempt that leaves the delivery pending, recorded as `record_failure` does
        and with the subscription's run of failures opened, all in one statement (it commits at
        once: no lock outlives it). (recorded, overdue): overdue when the subscription has
        failed for `disable_after` seconds and should be disabled (`subscription_failed`)."""
        row = await self.conn.fetchrow(
            # `s` runs though nothing reads it (PostgreSQL runs every data-modifying WITH).
            _FAILED_ATTEMPT + ", s AS (UPDATE subscriptions SET failing_since = now()"
            " WHERE id = (SELECT subscription_id FROM d) AND failing_since IS NULL RETURNING id)"
            " SELECT EXISTS (SELECT 1 FROM a) AS recorded, EXISTS ("
            " SELECT 1 FROM subscriptions WHERE id = (SELECT subscription_id FROM d) AND active"
            " AND failing_since <= now() - make_interval(secs => $13)) AS overdue",
            *_failed_attempt_args(claimed, outcome, PENDING, lane, retry_in),
            float(disable_after),
        )
        return bool(row["recorded"]), bool(row["overdue"])

    async def record_successes(self, done: list[tuple[Claimed, Outcome]]) -> int:
        """Log many successful attempts in one statement (the worker's group commit), each under
        the same condition as `record_failure`; how many were recorded. A success also ends its
        subscription's run of failures (touching the row only when there was one: every UPDATE
        of a subscription notifies each worker's index)."""
        recorded = await self.conn.fetchval(
            "WITH v AS ("
            " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::int[], $5::float8[],"
            "  $6::text[], $7::int[], $8::timestamptz[], $9::timestamptz[])"
            "  AS v (id, sub, at, code, ms, body, n, lease, due)),"
            " d AS ("
            " UPDATE deliveries d SET status = 'succeeded', attempts = d.attempts + 1,"
            " next_attempt_at = NULL, lease_until = NULL, enqueued_at = NULL,"
            " last_status_code = v.code, last_error = NULL, updated_at = now()"
            " FROM v WHERE d.id = v.id AND d.status = 'pending' AND d.attempts = v.n"
            "  AND d.lease_until = v.lease"
            " RETURNING v.*),"
            " a AS ("
            " INSERT INTO delivery_attempts"
            " (delivery_id, attempted_at, status_code, duration_ms, error, response_body, due_at)"
            " SELECT id, at, code, ms, NULL, body, due FROM d),"
            " s AS ("
            " UPDATE subscriptions SET failing_since = NULL"
            " WHERE id IN (SELECT sub FROM d) AND failing_since IS NOT NULL)"
            " SELECT count(*) FROM d",
            [c.id for c, _ in done],
            [c.subscription_id for c, _ in done],
            [o.attempted_at for _, o in done],
            [o.status_code for _, o in done],
            [o.duration_ms for _, o in done],
            [o.response_body for _, o in done],
            [c.attempts for c, _ in done],
            [c.lease_until for c, _ in done],
            [c.due_at for c, _ in done],
        )
        return int(recorded)

    async def subscription_failed(self, sub_id: uuid.UUID, disable_after: float) -> asyncpg.Record | None:
        """Open (or extend) the failure run; disable when it has lasted `disable_after` seconds.
        The subscription when this disabled it."""
        await self.conn.execute(
            "UPDATE subscriptions SET failing_since = now() WHERE id = $1 AND failing_since IS NULL", sub_id
        )
        return await self.conn.fetchrow(
            "UPDATE subscriptions SET active = false, version = version + 1, updated_at = now(),"
            " disabled_reason = $3"
            " WHERE id = $1 AND active AND failing_since <= now() - make_interval(secs => $2)"
            " RETURNING *",
            sub_id,
            float(disable_after),
            f"every delivery failed for {_span(disable_after)}",
        )

    async def disable(self, sub_id: uuid.UUID, reason: str) -> asyncpg.Record | None:
        """The subscription when this disabled it (None: it was not active)."""
        return await self.conn.fetchrow(
            "UPDATE subscriptions SET active = false, version = version + 1, disabled_reason = $2, updated_at = now()"
            " WHERE id = $1 AND active RETURNING *",
            sub_id,
            reason,
        )

    # -- the sweeper ------------------------------------------------------------------------

    async def take_due(self, limit: int, requeue_after: float) -> list[tuple[uuid.UUID, uuid.UUID, str]]:
        """Due deliveries that no worker holds and no recent message carries: mark them
        enqueued and return (delivery id, subscription id, lane)."""
        rows = await self.conn.fetch(
            "WITH due AS ("
            " SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= now()"
            "  AND (lease_until IS NULL OR lease_until < now())"
            "  AND (enqueued_at IS NULL OR enqueued_at < now() - make_interval(secs => $2))"
            " ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)"
            " UPDATE deliveries d SET enqueued_at = now() FROM due WHERE d.id = due.id"
            " RETURNING d.id, d.subscription_id, d.lane",
            limit,
            requeue_after,
        )
        return [(r["id"], r["subscription_id"], r["lane"]) for r in rows]

    # -- auth events ------------------------------------------------------------------------

    async def owner_deleted(self, owner_id: uuid.UUID) -> list[asyncpg.Record]:
        """The subscriptions this disabled."""
        return await self.conn.fetch(
            "UPDATE subscriptions SET active = false, version = version + 1, disabled_reason = 'the owner was deleted',"
            " updated_at = now() WHERE owner_id = $1 AND active RETURNING *",
            owner_id,
        )

    async def owner_changed(
        self, owner_id: uuid.UUID, roles: list[str] | None, active: bool
    ) -> list[asyncpg.Record]:
        """The subscriptions this disabled (the owner was disabled)."""
        if roles is not None:
            await self.conn.execute(
                "UPDATE subscriptions SET owner_roles = $2 WHERE owner_id = $1 AND owner_roles <> $2",
                owner_id,
                roles,
            )
        if active:
            return []
        return await self.conn.fetch(
            "UPDATE subscriptions SET active = false, version = version + 1, disabled_reason = 'the owner was disabled',"
            " updated_at = now() WHERE owner_id = $1 AND active RETURNING *",
            owner_id,
        )

    # -- the delivery log and its commands ------------------------------------------------

    async def subscription_owner(self, sub_id: uuid.UUID) -> tuple[str, bool] | None:
        row = await self.conn.fetchrow("SELECT owner_id, active FROM subscriptions WHERE id = $1", sub_id)
        return (str(row["owner_id"]), row["active"]) if row else None

    async def subscription_headers(self, sub_id: uuid.UUID) -> dict[str, str]:
        return _json_object(
            await self.conn.fetchval("SELECT headers FROM subscriptions WHERE id = $1", sub_id)
        )

    async def page(
        self,
        sub_id: uuid.UUID,
        status: str | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """Newest first, keyset-paged on (created_at, id), each with its attempts."""
        rows = await self.conn.fetch(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries"
            " WHERE subscription_id = $1 AND ($2::text IS NULL OR status = $2)"
            f" AND {after_created(3, newest_first=True)}",
            sub_id,
            status,
            *keyset_args(after, limit),
        )
        return await self._with_attempts(rows)

    async def one(self, sub_id: uuid.UUID, delivery_id: uuid.UUID) -> dict[str, Any]:
        rows = await self.conn.fetch(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE id = $1 AND subscription_id = $2",
            delivery_id,
            sub_id,
        )
        if not rows:
            raise NotFound("no such delivery")
        return (await self._with_attempts(rows))[0]

    async def _with_attempts(self, rows: list[Any]) -> list[dict[str, Any]]:
        deliveries = [dict(r) for r in rows]
        if not deliveries:
            return deliveries
        attempts = await self.conn.fetch(
            "SELECT delivery_id, attempted_at, status_code, duration_ms, error, response_body"
            " FROM delivery_attempts WHERE delivery_id = ANY($1::uuid[]) ORDER BY id",
            [d["id"] for d in deliveries],
        )
        by_delivery: dict[uuid.UUID, list[dict[str, Any]]] = {}
        for a in attempts:
            by_delivery.setdefault(a["delivery_id"], []).append(dict(a))
        for d in deliveries:
            d["attempt_log"] = by_delivery.get(d["id"], [])
        return deliveries

    async def redeliver(self, sub_id: uuid.UUID, delivery_id: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID, str]:
        """Make one delivery due now on the retry lane (409 while it is still pending)."""
        row = await self.conn.fetchrow(
            "UPDATE deliveries SET status = 'pending', lane = 'retry', next_attempt_at = now(),"
            " lease_until = NULL, enqueued_at = now(), updated_at = now()"
            " WHERE id = $1 AND subscription_id = $2 AND status <> 'pending' RETURNING id",
            delivery_id,
            sub_id,
        )
        if row is None:
            exists = await self.conn.fetchval(
                "SELECT true FROM deliveries WHERE id = $1 AND subscription_id = $2", delivery_id, sub_id
            )
            if exists:
                raise Conflict("this delivery is still pending; it will be attempted")
            raise NotFound("no such delivery")
        return (delivery_id, sub_id, RETRY)

    async def recoverable(
        self, sub_id: uuid.UUID, since: datetime, until: datetime | None
    ) -> tuple[int, datetime]:
        """How many failed and skipped deliveries the window holds now, and where it ends
        (`until`, or now: what is created later is not in it)."""
        row = await self.conn.fetchrow(
            "SELECT count(*) AS n, coalesce($3::timestamptz, now()) AS until FROM deliveries"
            " WHERE subscription_id = $1 AND status IN ('failed', 'skipped') AND created_at >= $2"
            "  AND created_at < coalesce($3::timestamptz, now())",
            sub_id,
            since,
            until,
        )
        assert row is not None
        return row["n"], row["until"]

    async def recover_page(
        self,
        sub_id: uuid.UUID,
        since: datetime,
        until: datetime,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> tuple[list[tuple[uuid.UUID, uuid.UUID, str]], tuple[datetime, uuid.UUID] | None]:
        """Make the next page of the window's failed and skipped deliveries (oldest first,
        keyset-paged on (created_at, id), after `after`) due now on the retry lane: those
        re-queued, and where the next page starts (None: this was the last). A delivery that
        changed meanwhile (retried on its own) is passed over, not sent twice."""
        rows = await self.conn.fetch(
            "WITH page AS ("
            " SELECT id, created_at FROM deliveries"
            " WHERE subscription_id = $1 AND status IN ('failed', 'skipped') AND created_at >= $2"
            f"  AND created_at < $3 AND {after_created(4)}),"
            " done AS ("
            " UPDATE deliveries d SET status = 'pending', lane = 'retry', next_attempt_at = now(),"
            "  lease_until = NULL, enqueued_at = now(), updated_at = now()"
            " FROM page WHERE d.id = page.id AND d.status IN ('failed', 'skipped') RETURNING d.id)"
            " SELECT page.id, page.created_at, done.id IS NOT NULL AS requeued"
            " FROM page LEFT JOIN done ON done.id = page.id ORDER BY page.created_at, page.id",
            sub_id,
            since,
            until,
            *keyset_args(after, limit),
        )
        items = [(r["id"], sub_id, RETRY) for r in rows if r["requeued"]]
        last = (rows[-1]["created_at"], rows[-1]["id"]) if len(rows) == limit else None
        return items, last

    async def create_single(
        self, sub_id: uuid.UUID, event_id: uuid.UUID, topic: str, body: bytes
    ) -> dict[str, Any]:
        """An event for one subscription only (a ping), pending now on the first lane."""
        delivery_id = uuid.uuid4()
        await self.fan_out(event_id, topic, body, [(delivery_id, sub_id, PENDING)])
        return await self.one(sub_id, delivery_id)


def _span(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} seconds"


def _claimed(row: Any, event_id: uuid.UUID, body: bytes, *, attempts: int, active: bool = True) -> Claimed:
    secrets = [row["secret"]]
    if row["previous_secret"] and row["previous_signs"]:
        secrets.append(row["previous_secret"])
    return Claimed(
        id=row["id"],
        subscription_id=row["subscription_id"],
        event_id=event_id,
        attempts=attempts,
        lease_until=row["lease_until"],
        body=body,
        url=row["url"],
        headers=_json_object(row["headers"]),
        secrets=tuple(secrets),
        active=active,
        due_at=row["next_attempt_at"],
        rate_limit=row["rate_limit"],
        has_slot=bool(row.get("has_slot")),
    )


def _json_object(raw: Any) -> dict[str, str]:
    value = orjson.loads(raw) if isinstance(raw, (str, bytes)) else raw
    return {str(k): str(v) for k, v in (value or {}).items()}


def public_delivery(row: dict[str, Any]) -> dict[str, Any]:
    """A delivery as the API shows it, with its attempt log."""
    return {
        "id": str(row["id"]),
        "subscriptionId": str(row["subscription_id"]),
        "eventId": str(row["event_id"]),
        "topic": row["topic"],
        "status": row["status"],
        "lane": row["lane"],
        "attemptCount": row["attempts"],
        "nextAttemptAt": format_time(row["next_attempt_at"]) if row["next_attempt_at"] else None,
        "lastStatusCode": row["last_status_code"],
        "lastError": row["last_error"],
        "createdAt": format_time(row["created_at"]),
        "updatedAt": format_time(row["updated_at"]),
        "attempts": [
            {
                "at": format_time(a["attempted_at"]),
                "statusCode": a["status_code"],
                "durationMs": round(a["duration_ms"], 1),
                "error": a["error"],
                "responseBody": a["response_body"],
            }
            for a in row.get("attempt_log", [])
        ],
    }

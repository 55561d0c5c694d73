"""Operational events: what happens to a subscription (disabled, failing, recovered) and to a
delivery (failed for good), told to the subscription's owner and to admins through their other
subscriptions.

Each is written to this service's outbox in the transaction of the change it reports (so a
crash right after the change cannot lose it), relayed to the domain exchange, and fanned out
like any event with one rule (`may_receive`): to the owner's and admins' subscriptions, never to
the subscription it is about. A delivery of an operational event that fails (or disables its
subscription, or starts its run of failures) raises none (no loops): `reports_on` says no.

Here, beside the API and the engine, because both raise them (the API: disabled by hand)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import asyncpg

from services.webhook_delivery.store.delivery_repo import Outcome
from services.webhook_delivery.store.subscription_repo import public_subscription
from shared import outbox
from shared.events import (
    DELIVERY_FAILED,
    OPERATIONAL_TOPICS,
    SUBSCRIPTION_DISABLED,
    SUBSCRIPTION_FAILING,
    SUBSCRIPTION_RECOVERED,
    format_time,
    make_event,
)

GONE, FAILING, OWNER_REMOVED, BY_HAND = "gone", "failing", "owner_removed", "by_hand"
# The subscription's columns an operational event shows.
COLUMNS = "id, owner_id, url, topics, description, active, disabled_reason, version, created_at, updated_at"
ADMIN = "admin"


def reports_on(topic: str | None) -> bool:
    """Whether what happens to a delivery of `topic` raises operational events: not for an
    operational event's own (else a receiver failing them would feed itself more)."""
    return topic not in OPERATIONAL_TOPICS


def may_receive(sub_id: uuid.UUID, owner_id: str, owner_roles: Iterable[str], data: dict[str, Any]) -> bool:
    """The fan-out's rule for an operational event: the subscription it is about never gets it;
    another subscription of the same owner does, and an admin's; nobody else's."""
    about = data.get("subscription")
    if not isinstance(about, dict) or about.get("id") == str(sub_id):
        return False
    return about.get("ownerId") == owner_id or ADMIN in owner_roles


def summary(row: Any) -> dict[str, Any]:
    """The subscription as its operational events show it: no secret, and no headers (they
    often hold a receiver's credential, and admins' receivers get these too), no filter and no
    rate limit."""
    shown = public_subscription({**dict(row), "headers": None, "filter": None, "rate_limit": None})
    del shown["headers"], shown["filter"], shown["rateLimit"]
    return shown


class Reporter:
    """Writes operational events into the outbox, on the caller's connection (in its
    transaction)."""

    def __init__(self, conn: asyncpg.Connection, schema: str) -> None:
        self.conn = conn
        self.schema = schema

    async def _emit(self, topic: str, data: dict[str, Any], actor_id: str | None = None) -> None:
        await outbox.enqueue(self.conn, self.schema, make_event(topic, data, actor_id))

    async def after_failure(
        self,
        delivery_id: uuid.UUID,
        sub_id: uuid.UUID,
        outcome: Outcome,
        *,
        final: bool,
        disabled: asyncpg.Record | None,
        circuit_open: bool,
    ) -> None:
        """What a failed attempt (just recorded) raises: delivery.failed when it was the last
        one, subscription.disabled when it disabled the subscription (410: gone; else failing),
        or subscription.failing once the subscription's circuit opened."""
        if not (final or disabled is not None or circuit_open):
            return
        topic = await self.conn.fetchval("SELECT topic FROM deliveries WHERE id = $1", delivery_id)
        if not reports_on(topic):
            return
        code = outcome.status_code
        if final:
            await self.delivery_failed(delivery_id)
        if disabled is not None:
            await self.disabled([disabled], GONE if code == 410 else FAILING, last_status_code=code)
        elif circuit_open:
            await self.failing(sub_id, code, outcome.error)

    async def disabled(
        self,
        rows: Iterable[Any],
        reason: str,
        *,
        last_status_code: int | None = None,
        actor_id: str | None = None,
    ) -> None:
        """`rows`: the subscriptions just disabled (at least COLUMNS)."""
        for row in rows:
            data: dict[str, Any] = {
                "subscription": summary(row),
                "reason": reason,
                "detail": row["disabled_reason"] or "",
            }
            if last_status_code is not None:
                data["lastStatusCode"] = last_status_code
            await self._emit(SUBSCRIPTION_DISABLED, data, actor_id)

    async def failing(self, sub_id: uuid.UUID, status_code: int | None, error: str | None) -> None:
        """Raise subscription.failing unless this run of failures raised it already."""
        row = await self.conn.fetchrow(
            "UPDATE subscriptions SET failing_reported_at = now()"
            " WHERE id = $1 AND active AND failing_since IS NOT NULL AND failing_reported_at IS NULL"
            f" RETURNING {COLUMNS}, failing_since",
            sub_id,
        )
        if row is not None:
            await self._emit(
                SUBSCRIPTION_FAILING,
                {
                    "subscription": summary(row),
                    "failingSince": format_time(row["failing_since"]),
                    "lastStatusCode": status_code,
                    "lastError": error,
                },
            )

    async def recovered(self, sub_ids: Iterable[uuid.UUID]) -> None:
        """After successes were recorded (which end a run of failures): subscription.recovered
        for each whose run had raised subscription.failing."""
        rows = await self.conn.fetch(
            "UPDATE subscriptions SET failing_reported_at = NULL"
            " WHERE id = ANY($1::uuid[]) AND failing_reported_at IS NOT NULL AND failing_since IS NULL"
            f" RETURNING {COLUMNS}",
            list(set(sub_ids)),
        )
        for row in rows:
            await self._emit(SUBSCRIPTION_RECOVERED, {"subscription": summary(row)})

    async def delivery_failed(self, delivery_id: uuid.UUID) -> None:
        row = await self.conn.fetchrow(
            "SELECT d.id AS delivery_id, d.event_id, d.topic, d.attempts, d.last_status_code,"
            " d.last_error, s.id, s.owner_id, s.url, s.topics, s.description, s.active,"
            " s.disabled_reason, s.version, s.created_at, s.updated_at"
            " FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id"
            " WHERE d.id = $1 AND d.status = 'failed'",
            delivery_id,
        )
        if row is not None:
            await self._emit(
                DELIVERY_FAILED,
                {
                    "deliveryId": str(row["delivery_id"]),
                    "subscription": summary(row),
                    "eventId": str(row["event_id"]),
                    "eventType": row["topic"],
                    "attempts": row["attempts"],
                    "lastStatusCode": row["last_status_code"],
                    "lastError": row["last_error"],
                },
            )

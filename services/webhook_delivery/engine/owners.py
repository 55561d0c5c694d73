"""Auth's user events, as they concern subscriptions: a deleted or disabled user's
subscriptions are disabled (each raising subscription.disabled, reason owner_removed), and a
change of roles changes what their subscriptions may read."""

from __future__ import annotations

import uuid
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

from services.webhook_delivery import operational
from services.webhook_delivery.engine.outage import until_available
from services.webhook_delivery.store.delivery_repo import DeliveryRepo
from shared.db import Database
from shared.events import USER_CREDENTIALS_CHANGED, USER_DELETED

OWNER_TOPICS = (USER_CREDENTIALS_CHANGED, USER_DELETED)


class OwnerEvents:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def handle(self, event: dict[str, Any], _message: AbstractIncomingMessage) -> None:
        data = event.get("data")
        if not isinstance(data, dict):
            return
        try:
            owner_id = uuid.UUID(str(data.get("id")))
        except ValueError:
            return
        roles = data.get("roles")
        valid_roles = (
            [str(r) for r in roles]
            if isinstance(roles, list) and all(isinstance(r, str) for r in roles)
            else None
        )
        active = data.get("active", True) is not False

        async def apply() -> None:
            async with self.db.transaction() as conn:
                repo = DeliveryRepo(conn)
                if event.get("type") == USER_DELETED:
                    disabled = await repo.owner_deleted(owner_id)
                elif event.get("type") == USER_CREDENTIALS_CHANGED:
                    disabled = await repo.owner_changed(owner_id, valid_roles, active)
                else:
                    return
                actor = event.get("actor")
                actor_id = actor.get("id") if isinstance(actor, dict) else None
                await operational.Reporter(conn, self.db.schema).disabled(
                    disabled,
                    operational.OWNER_REMOVED,
                    actor_id=actor_id if isinstance(actor_id, str) else None,
                )

        await until_available(apply, f"owner event {event.get('id')}")

"""Who may use a subscription through the API: its owner or an admin. Anyone else is answered
as if it did not exist (404), so ids of other people's subscriptions reveal nothing."""

from __future__ import annotations

import uuid

from aiohttp import web

from services.webhook_delivery.store.delivery_repo import DeliveryRepo
from shared.appkeys import DATABASE
from shared.authn import principal
from shared.problems import Conflict, NotFound
from shared.verifier import Principal
from shared.web.params import path_uuid


def owner_scope(caller: Principal) -> str | None:
    """The owner a caller is limited to: none for admins."""
    return None if caller.is_admin else caller.user_id


async def own_subscription(request: web.Request) -> tuple[uuid.UUID, bool]:
    """The subscription id of the path and whether it is active, when the caller owns it or is
    an admin."""
    sub_id = path_uuid(request, "subscription")
    caller = principal(request)
    async with request.app[DATABASE].connection() as conn:
        found = await DeliveryRepo(conn).subscription_owner(sub_id)
    if found is None or not (caller.is_admin or found[0] == caller.user_id):
        raise NotFound("no such subscription")
    return sub_id, found[1]


def require_active(active: bool) -> None:
    """Commands that send something need an active subscription."""
    if not active:
        raise Conflict("the subscription is disabled; enable it (PATCH active: true) first")

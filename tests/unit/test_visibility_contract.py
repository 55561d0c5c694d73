"""The API and the webhooks agree on who may read an event: a subscriber receives exactly the
events its owner could GET. Both ask shared/visibility.py; this holds the way each maps its own
data (a row, an envelope and a subscription's owner) onto that one rule."""

from __future__ import annotations

import uuid

import pytest

from services.resource.types import EVENT_TYPE
from services.resource.workflow import may_read
from services.webhook_delivery.engine.index import IndexedSubscription
from shared.catalog import EVENT_STATUSES
from shared.verifier import Principal

OWNER, OTHER = str(uuid.uuid4()), str(uuid.uuid4())


@pytest.mark.parametrize("status", EVENT_STATUSES)
@pytest.mark.parametrize(
    "reader", [(OWNER, ("member",)), (OTHER, ("member",)), (OTHER, ("approver",)), (OTHER, ("admin",))]
)
def test_a_subscriber_gets_what_its_owner_may_read(status: str, reader: tuple[str, tuple[str, ...]]) -> None:
    user_id, roles = reader
    caller = Principal(user_id, "x@example.com", roles, 1, 0)
    api = may_read(EVENT_TYPE, caller, {"status": status, "owner_id": OWNER})
    subscription = IndexedSubscription(
        id=uuid.uuid4(), owner_id=user_id, owner_roles=frozenset(roles), topics=("event.*",), active=True
    )
    webhook = subscription.may_read("event.updated", {"status": status, "ownerId": OWNER})
    assert webhook == api

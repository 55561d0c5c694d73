"""Who receives an operational event (services/webhook_delivery/operational.py): the owner's
other subscriptions and admins'; never the subscription it is about, nor another member's."""

from __future__ import annotations

import uuid

import pytest

from services.webhook_delivery.operational import may_receive, reports_on
from shared.events import OPERATIONAL_TOPICS

OWNER, OTHER = str(uuid.uuid4()), str(uuid.uuid4())
ABOUT = uuid.uuid4()
DATA = {"subscription": {"id": str(ABOUT), "ownerId": OWNER}}


@pytest.mark.parametrize(
    ("sub_id", "owner_id", "roles", "expected"),
    [
        (uuid.uuid4(), OWNER, ("member",), True),  # the owner's other subscription
        (ABOUT, OWNER, ("member",), False),  # the subscription it is about
        (ABOUT, OWNER, ("admin",), False),  # ... even when its owner is an admin
        (uuid.uuid4(), OTHER, ("member",), False),  # another member
        (uuid.uuid4(), OTHER, ("approver",), False),  # approvers review events, not subscriptions
        (uuid.uuid4(), OTHER, ("admin",), True),  # an admin's
    ],
)
def test_the_owner_and_admins_hear_never_the_subject(
    sub_id: uuid.UUID, owner_id: str, roles: tuple[str, ...], expected: bool
) -> None:
    assert may_receive(sub_id, owner_id, roles, DATA) is expected


@pytest.mark.parametrize("data", [{}, {"subscription": None}, {"subscription": "x"}])
def test_an_event_about_no_subscription_reaches_nobody(data: dict[str, object]) -> None:
    assert not may_receive(uuid.uuid4(), OTHER, ("admin",), data)


def test_deliveries_of_operational_events_raise_none() -> None:
    assert all(not reports_on(topic) for topic in OPERATIONAL_TOPICS)
    assert reports_on("location.created") and reports_on("webhook.ping")

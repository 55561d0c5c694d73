"""What a subscription is sent: the catalog topics its patterns cover, and only the events its
owner may read. The fan-out (engine/index.py) and replay (api/replay.py) decide alike."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from services.webhook_delivery import operational
from shared import visibility
from shared.catalog import TOPICS
from shared.events import OPERATIONAL_TOPICS, WEBHOOK_PING


def owner_may_read(
    topic: str, data: Mapping[str, Any], sub_id: uuid.UUID, owner_id: str, owner_roles: Iterable[str]
) -> bool:
    """What the owner may read, as the resource API decides it: approved and cancelled events
    and every location to all; other events only to their owner, approvers and admins.
    Operational events (about a subscription): see operational.may_receive. A topic family
    without a rule here reaches nobody (a new family must say who may read it)."""
    if topic in OPERATIONAL_TOPICS:
        return operational.may_receive(sub_id, owner_id, owner_roles, dict(data))
    if topic.startswith("location."):
        return True
    if topic.startswith("event."):
        return visibility.may_read(data.get("status"), str(data.get("ownerId")), owner_id, owner_roles)
    return False


def covered_topics(patterns: Collection[str]) -> list[str]:
    """The catalog's topics (pings aside: each is made for one subscription) that topic
    patterns cover: exact names, `<family>.*` and `*`."""
    return [
        topic
        for topic in TOPICS
        if topic != WEBHOOK_PING
        and ("*" in patterns or topic in patterns or f"{topic.split('.', 1)[0]}.*" in patterns)
    ]

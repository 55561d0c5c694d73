"""A create writes its rows and their events in one statement (no transaction round trips when
there is nothing to check first): what it answers, what GET shows and what the event carries
are the same resource, in both the one-statement and the checked (reference, Idempotency-Key)
ways, single and batched."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Suite
from tests.integration.test_resource_events import collect, domain_queue, events_of
from tests.integration.test_resources import EVENT, create, new_location

__all__ = ["domain_queue"]  # the fixture, used by name


async def _same_everywhere(suite: Suite, token: str, answered: dict[str, Any], queue: Any) -> None:
    resp, shown = await suite.request("GET", f"/v2/event/{answered['id']}", token=token)
    assert resp.status == 200
    assert shown == answered
    messages = await collect(queue, lambda got: bool(events_of(got, answered["id"])))
    (event,) = events_of(messages, answered["id"])
    assert event["type"] == "event.created"
    assert event["data"] == answered
    assert answered["createdAt"] == answered["updatedAt"]


@pytest.mark.parametrize("way", ["plain", "with a reference", "with an Idempotency-Key"])
async def test_answer_get_and_event_agree(suite: Suite, domain_queue: Any, way: str) -> None:
    _, _, token = await suite.new_user()
    body: dict[str, Any] = dict(EVENT)
    headers: dict[str, str] = {}
    if way == "with a reference":
        body["locationId"] = (await new_location(suite, token))["id"]
    elif way == "with an Idempotency-Key":
        headers["Idempotency-Key"] = f"create-{way}-{token[-12:]}"
    resp, answered = await create(suite, token, "event", body, **headers)
    assert resp.status == 201, answered
    await _same_everywhere(suite, token, answered, domain_queue)


async def test_a_batch_agrees_item_by_item(suite: Suite, domain_queue: Any) -> None:
    _, _, token = await suite.new_user()
    resp, answered = await create(suite, token, "event", [{**EVENT, "title": f"B{i}"} for i in range(3)])
    assert resp.status == 201, answered
    assert [item["title"] for item in answered] == ["B0", "B1", "B2"]
    for item in answered:
        await _same_everywhere(suite, token, item, domain_queue)

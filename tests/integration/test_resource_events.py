"""Every change of a resource reaches the domain exchange once its transaction commits, with
the envelope of shared/events.py; a failed change publishes nothing; a cut AMQP connection loses
nothing. A queue of the test's own is bound to the suite's domain exchange."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import asyncpg
import orjson
import pytest

from tests.conftest import AMQP_URL, Suite, close_broker_connections
from tests.factories import EVENT, create, new_event
from tests.integration.test_workflow import move


@pytest.fixture
async def domain_queue(suite: Suite) -> AsyncIterator[aio_pika.abc.AbstractQueue]:
    connection = await aio_pika.connect(AMQP_URL)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(suite.settings.domain_exchange, "topic", durable=True)
    queue = await channel.declare_queue("", exclusive=True)
    await queue.bind(exchange, "#")
    yield queue
    await connection.close()


async def collect(
    queue: aio_pika.abc.AbstractQueue, until: Any, timeout: float = 15
) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Messages until `until(messages)` is true."""
    got: list[aio_pika.abc.AbstractIncomingMessage] = []
    async with asyncio.timeout(timeout):
        async with queue.iterator() as it:
            async for message in it:
                await message.ack()
                got.append(message)
                if until(got):
                    break
    return got


def events_of(messages: list[Any], resource_id: str) -> list[dict[str, Any]]:
    bodies = [orjson.loads(m.body) for m in messages]
    return [b for b in bodies if b["data"].get("id") == resource_id]


async def test_a_full_workflow_publishes_exactly_its_topics(suite: Suite, domain_queue: Any) -> None:
    owner, _, token = await suite.new_user()
    approver, _, approver_token = await suite.new_user(["approver"])
    event = await new_event(suite, token)
    await move(suite, token, event, "submit")
    await move(suite, approver_token, event, "approve")
    resp, _ = await suite.request(
        "PATCH",
        f"/v2/event/{event['id']}",
        token=token,
        json={"title": "Moved"},
        headers={"X-Request-ID": "req-ev-1"},
    )
    assert resp.status == 200
    await move(suite, approver_token, event, "approve")  # the edit sent it back to pending
    await move(suite, token, event, "cancel")
    resp, _ = await suite.request("DELETE", f"/v2/event/{event['id']}", token=token)
    assert resp.status == 204
    expected = [
        "event.created",
        "event.submitted",
        "event.approved",
        "event.updated",
        "event.approved",
        "event.cancelled",
        "event.deleted",
    ]
    messages = await collect(domain_queue, lambda got: len(events_of(got, event["id"])) == len(expected))
    mine = [m for m in messages if orjson.loads(m.body)["data"].get("id") == event["id"]]
    bodies = [orjson.loads(m.body) for m in mine]
    assert [b["type"] for b in bodies] == expected
    assert [m.routing_key for m in mine] == expected
    for message, body in zip(mine, bodies, strict=True):
        assert set(body) == {"id", "type", "timestamp", "data", "actor"}
        assert message.message_id == body["id"] and uuid.UUID(body["id"])
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert body["timestamp"].endswith("Z")
    assert [b["actor"]["id"] for b in bodies] == [
        owner["id"],
        owner["id"],
        approver["id"],
        owner["id"],
        approver["id"],
        owner["id"],
        owner["id"],
    ]
    # `data` is the resource as GET returned it at that moment.
    assert [b["data"]["status"] for b in bodies] == [
        "draft",
        "pending",
        "approved",
        "pending",
        "approved",
        "cancelled",
        "cancelled",
    ]
    assert bodies[3]["data"]["title"] == "Moved" and bodies[3]["data"]["version"] == 4
    assert mine[3].headers["x-request-id"] == "req-ev-1"
    assert len({b["id"] for b in bodies}) == len(expected)


async def test_location_changes_publish_their_topics(suite: Suite, domain_queue: Any) -> None:
    _, _, token = await suite.new_user()
    resp, place = await create(suite, token, "location", {"name": "Hall", "timezone": "UTC"})
    assert resp.status == 201, place
    await suite.request("PATCH", f"/v2/location/{place['id']}", token=token, json={"capacity": 9})
    await suite.request("DELETE", f"/v2/location/{place['id']}", token=token)
    messages = await collect(domain_queue, lambda got: len(events_of(got, place["id"])) == 3)
    assert [b["type"] for b in events_of(messages, place["id"])] == [
        "location.created",
        "location.updated",
        "location.deleted",
    ]


async def test_a_change_that_fails_leaves_neither_row_nor_event(suite: Suite, domain_queue: Any) -> None:
    """A fault after the row and its outbox entry were written (a trigger that fails the
    transaction at its last statement) rolls both back."""
    _, _, token = await suite.new_user()
    marker = "boom-" + uuid.uuid4().hex[:8]
    conn = await asyncpg.connect(suite.settings.database_url)
    trigger = f"fail_{marker.replace('-', '_')}"
    try:
        await conn.execute(
            f"""CREATE FUNCTION resource.{trigger}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF convert_from(NEW.body, 'UTF8') LIKE '%{marker}%' THEN
                    RAISE EXCEPTION 'injected fault';
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER {trigger} BEFORE INSERT ON resource.outbox
                FOR EACH ROW EXECUTE FUNCTION resource.{trigger}();"""
        )
        resp, _ = await create(suite, token, "event", {**EVENT, "title": marker})
        assert resp.status == 500
        after = await new_event(suite, token, title="after the fault")
        rows = await conn.fetchval("SELECT count(*) FROM resource.resources WHERE doc->>'title' = $1", marker)
        assert rows == 0
        messages = await collect(domain_queue, lambda got: bool(events_of(got, after["id"])))
        assert not any(marker in m.body.decode() for m in messages)
    finally:
        await conn.execute(f"DROP TRIGGER IF EXISTS {trigger} ON resource.outbox")
        await conn.execute(f"DROP FUNCTION IF EXISTS resource.{trigger}()")
        await conn.close()


async def test_every_event_arrives_when_the_broker_connection_is_cut_under_load(
    suite: Suite, domain_queue: Any
) -> None:
    _, _, token = await suite.new_user()
    tag = "cut-" + uuid.uuid4().hex[:8]
    created: list[str] = []

    async def writer(n: int) -> None:
        for i in range(n):
            resp, body = await create(suite, token, "event", {**EVENT, "title": f"{tag} {i}", "tags": [tag]})
            assert resp.status == 201, body
            created.append(body["id"])

    load = asyncio.gather(*(writer(25) for _ in range(8)))
    async with asyncio.timeout(60):  # under way: the cut lands in the middle of the writes
        while len(created) < 20 and not load.done():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    closed = await asyncio.to_thread(close_broker_connections, f"{suite.settings.queue_prefix}.resource")
    assert closed >= 1
    await load
    assert len(created) == 200
    wanted = set(created)

    def all_arrived(got: list[Any]) -> bool:
        ids = {orjson.loads(m.body)["data"].get("id") for m in got}
        return wanted <= ids

    messages = await collect(domain_queue, all_arrived, timeout=60)
    seen: dict[str, set[str]] = {}
    for m in messages:
        body = orjson.loads(m.body)
        if body["data"].get("id") in wanted:
            seen.setdefault(body["data"]["id"], set()).add(m.message_id or "")
    assert set(seen) == wanted
    # A resource may be published twice after a cut, but always under its one event id.
    assert all(len(ids) == 1 for ids in seen.values())

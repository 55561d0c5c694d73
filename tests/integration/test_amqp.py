"""RabbitMQ helpers: consumers ack after the work, requeue on a transient failure and
dead-letter poison; a connection cut by the broker comes back with its consumers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import orjson
import pytest

from shared.acks import for_channel
from shared.amqp import Broker, PoisonMessage, consume
from tests.conftest import AMQP_URL, Suite, close_broker_connections
from tests.delivery_support import wait_until


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    b = Broker(AMQP_URL, prefix=f"herald.test.{uuid.uuid4().hex[:8]}")
    await b.connect()
    yield b
    channel = await b.channel()
    for name in (f"{b.prefix}.work", f"{b.prefix}.dead-letter"):
        await channel.queue_delete(name)
    for name in (f"{b.prefix}.events", f"{b.prefix}.dead-letter"):
        await channel.exchange_delete(name)
    await b.close()


async def test_consumer_acks_requeues_and_dead_letters(broker: Broker) -> None:
    exchange = f"{broker.prefix}.events"
    channel = await broker.channel(prefetch=10)
    queue = await broker.work_queue(channel, f"{broker.prefix}.work", exchange, ["thing.*"])
    handled: list[str] = []
    attempts: dict[str, int] = {}
    done = asyncio.Event()

    async def handler(event: dict[str, Any], message: Any) -> None:
        attempts[event["id"]] = attempts.get(event["id"], 0) + 1
        if event["id"] == "flaky" and attempts["flaky"] == 1:
            raise ConnectionError("a transient failure")
        if event["id"] == "poison":
            raise PoisonMessage("this can never be handled")
        handled.append(event["id"])
        if {"good", "flaky"} <= set(handled):
            done.set()

    await consume(queue, handler, retry_delay=0.05)
    for event_id in ("good", "flaky", "poison"):
        await broker.publish(exchange, "thing.made", orjson.dumps({"id": event_id}), message_id=event_id)
    await broker.publish(exchange, "thing.made", b"{not json", message_id="garbage")
    async with asyncio.timeout(30):
        await done.wait()
    assert sorted(handled) == ["flaky", "good"] and attempts["flaky"] == 2

    dead = await channel.declare_queue(
        f"{broker.prefix}.dead-letter", durable=True, arguments={"x-queue-type": "quorum"}
    )
    dead_ids = set()
    async with asyncio.timeout(30):
        while len(dead_ids) < 2:
            message = await dead.get(fail=False)
            if message is None:
                await asyncio.sleep(0.05)
                continue
            await message.ack()
            dead_ids.add(message.message_id)
    assert dead_ids == {"poison", "garbage"}
    assert attempts["poison"] == 1  # dead-lettered at once, not requeued forever


async def test_publish_waits_for_the_broker_confirm(broker: Broker) -> None:
    exchange = f"{broker.prefix}.events"
    channel = await broker.channel()
    ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue("", exclusive=True)
    await queue.bind(ex, "#")
    await asyncio.gather(
        *(broker.publish(exchange, "thing.made", b"{}", message_id=str(i)) for i in range(200))
    )
    # Confirmed means routed and stored: all are in the queue as the calls return.
    ids = []
    while (message := await queue.get(fail=False, no_ack=True)) is not None:
        ids.append(message.message_id)
    assert sorted(ids, key=int) == [str(i) for i in range(200)]


async def test_acks_reach_the_broker_and_one_slow_message_holds_no_other(broker: Broker) -> None:
    """Acks are coalesced per channel (shared/acks.py): every handled message is acknowledged,
    a slow one does not hold the acks (so the prefetch window) of those after it, and a
    coalesced ack never covers another consumer's message still being handled on the channel."""
    exchange = f"{broker.prefix}.events"
    channel = await broker.channel(prefetch=5)
    fast = await broker.work_queue(channel, f"{broker.prefix}.work", exchange, ["fast.*"])
    slow = await channel.declare_queue("", exclusive=False, auto_delete=False)
    ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    await slow.bind(ex, "slow.*")
    release = asyncio.Event()
    slow_started = asyncio.Event()
    all_handled = asyncio.Event()
    handled: list[str] = []
    last: list[Any] = []

    async def wait_for_release(event: dict[str, Any], message: Any) -> None:
        slow_started.set()
        await release.wait()

    async def quick(event: dict[str, Any], message: Any) -> None:
        handled.append(event["id"])
        if len(handled) == 50:
            last.append(message)
            all_handled.set()

    try:
        await consume(slow, wait_for_release)
        await broker.publish(exchange, "slow.one", b'{"id": "slow"}', message_id="slow")
        async with asyncio.timeout(30):  # the slow one is being handled: one of the 5 prefetched
            await slow_started.wait()
        await consume(fast, quick)
        for i in range(50):
            await broker.publish(exchange, "fast.one", orjson.dumps({"id": str(i)}), message_id=str(i))
        async with asyncio.timeout(30):  # 50 through a window of 5 while the slow one waits
            await all_handled.wait()
            # The channel's acks written out: only the slow one's is still to come.
            acks = for_channel(last[0])
            while acks._sending or any(m is not None for m in acks._open.values()):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        await channel.close()  # unacknowledged messages go back to their queues
        check = await broker.channel()
        fast_left = await check.declare_queue(fast.name, passive=True)
        slow_left = await check.declare_queue(slow.name, passive=True)
        assert fast_left.declaration_result.message_count == 0  # all 50 acknowledged
        assert slow_left.declaration_result.message_count == 1  # never acknowledged for it
        await check.queue_delete(slow.name)
    finally:
        release.set()


async def test_a_service_still_revokes_tokens_after_its_broker_connection_is_cut(suite: Suite) -> None:
    _, password, old = await suite.new_user()
    resp, _ = await suite.request("GET", "/v2/event/list", token=old)
    assert resp.status == 200
    name = f"{suite.settings.queue_prefix}.resource"
    assert close_broker_connections(name) >= 1
    # The robust connection comes back by itself and restores the private queue and consumer.
    await asyncio.sleep(1)
    await wait_until(lambda: _answers(suite, "/readyz", 200), what="the suite to be ready again")
    resp, _ = await suite.request(
        "PATCH", "/v2/user/me", token=old, json={"password": "after-the-cut-1", "currentPassword": password}
    )
    assert resp.status == 200
    # The resource's verifier trusts a cached credential version for 60 s: within the wait
    # below only the user.credentials_changed event over the restored connection can refuse it.
    await wait_until(lambda: _answers(suite, "/v2/event/list", 401, old), what="the old token to be refused")


async def _answers(suite: Suite, path: str, status: int, token: str | None = None) -> bool:
    return (await suite.request("GET", path, token=token))[0].status == status

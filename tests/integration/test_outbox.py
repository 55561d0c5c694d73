"""The transactional outbox (shared by every producing service): no change without its
event, no event without its change, and a crash between confirm and mark only repeats an
event under the same id."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import asyncpg
import orjson
import pytest

from services.resource.app import SCHEMA
from shared.db import Database
from shared.events import make_event
from shared.outbox import OutboxRelay, enqueue, notify_channel


@contextlib.asynccontextmanager
async def _running(relay: OutboxRelay) -> AsyncIterator[None]:
    """The relay running in a task until the block ends, then stopped and closed."""
    task = asyncio.create_task(relay.run())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await relay.close()


async def _received(
    queue: aio_pika.abc.AbstractQueue, count: int, timeout: float = 30
) -> list[aio_pika.abc.AbstractIncomingMessage]:
    messages = []
    async with asyncio.timeout(timeout):
        async with queue.iterator() as it:
            async for message in it:
                await message.ack()
                messages.append(message)
                if len(messages) == count:
                    break
    return messages


async def test_relay_publishes_in_order_with_ids_and_marks_sent(outbox) -> None:  # type: ignore[no-untyped-def]
    db, broker, exchange, queue = outbox
    events = [make_event("location.created", {"n": i}, "actor-1") for i in range(50)]
    async with db.transaction() as conn:
        for event in events:
            await enqueue(conn, SCHEMA, event)
    relay = OutboxRelay(db, broker, exchange, batch=20)
    assert [await relay.relay_once() for _ in range(4)] == [20, 20, 10, 0]
    messages = await _received(queue, 50)
    assert [m.message_id for m in messages] == [e["id"] for e in events]
    assert all(m.routing_key == "location.created" for m in messages)
    assert all(m.delivery_mode == aio_pika.DeliveryMode.PERSISTENT for m in messages)
    assert [orjson.loads(m.body) for m in messages] == events
    async with db.connection() as conn:
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0


async def test_a_rolled_back_change_leaves_no_event(outbox) -> None:  # type: ignore[no-untyped-def]
    db, broker, exchange, _queue = outbox
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            await enqueue(conn, SCHEMA, make_event("location.created", {"n": 1}))
            raise RuntimeError("the change failed")
    assert await OutboxRelay(db, broker, exchange).relay_once() == 0
    async with db.connection() as conn:
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 0


# Longer than any test: whatever a relay publishes, it was woken to, not polled into.
NEVER = 3600.0


class _Passes(OutboxRelay):
    """A relay that tells when it has finished a pass (and so waits, listening)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.passes = 0
        self._passed = asyncio.Condition()

    async def relay_once(self) -> int:
        try:
            return await super().relay_once()
        finally:
            async with self._passed:
                self.passes += 1
                self._passed.notify_all()

    async def passed(self, count: int = 1) -> None:
        async with asyncio.timeout(30), self._passed:
            await self._passed.wait_for(lambda: self.passes >= count)


class _DiesBeforeMarking(OutboxRelay):
    """A relay whose process dies after the broker confirmed, before the rows are marked."""

    async def mark_sent(self, conn: asyncpg.Connection, seqs: list[int]) -> None:
        raise ConnectionResetError("the process died here")


async def test_a_crash_between_confirm_and_mark_republishes_with_the_same_id(outbox) -> None:  # type: ignore[no-untyped-def]
    db, broker, exchange, queue = outbox
    event = make_event("location.updated", {"n": 7})
    async with db.transaction() as conn:
        await enqueue(conn, SCHEMA, event)
    with pytest.raises(ConnectionResetError):
        await _DiesBeforeMarking(db, broker, exchange).relay_once()
    assert await OutboxRelay(db, broker, exchange).relay_once() == 1
    first, second = await _received(queue, 2)
    assert first.message_id == second.message_id == event["id"]
    assert first.body == second.body


async def test_the_running_relay_is_woken_by_notify(outbox) -> None:  # type: ignore[no-untyped-def]
    db, broker, exchange, queue = outbox
    relay = _Passes(db, broker, exchange, poll_seconds=NEVER)
    async with _running(relay):
        await relay.passed()  # idle, waiting on LISTEN with a poll that never comes
        event = make_event("location.deleted", {"n": 3})
        async with db.transaction() as conn:
            await enqueue(conn, SCHEMA, event)
        (message,) = await _received(queue, 1)
        assert message.message_id == event["id"]


async def test_the_relay_survives_its_database_connections_being_cut(outbox) -> None:  # type: ignore[no-untyped-def]
    db, broker, exchange, queue = outbox
    relay = _Passes(db, broker, exchange, poll_seconds=0.2)
    async with _running(relay):
        await relay.passed()  # listening, its pool in use
        async with db.connection() as conn:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        event = make_event("location.created", {"n": 9})
        async with asyncio.timeout(30):
            while True:
                try:
                    async with db.transaction() as conn:
                        await enqueue(conn, SCHEMA, event)
                    break
                except Exception:  # the pool's own connections were cut too
                    await asyncio.sleep(0.1)
        (message,) = await _received(queue, 1)
        assert message.message_id == event["id"]


async def test_several_relays_keep_each_resources_events_in_order(outbox) -> None:  # type: ignore[no-untyped-def]
    """Replicas run a relay each; whichever publishes, the events of one resource arrive in the
    order they were written."""
    db, broker, exchange, queue = outbox
    relays = [OutboxRelay(db, broker, exchange, batch=7, poll_seconds=0.05) for _ in range(3)]
    tasks = [asyncio.create_task(relay.run()) for relay in relays]
    try:
        written = []
        for round_ in range(30):
            async with db.transaction() as conn:
                for resource in range(5):
                    event = make_event("event.updated", {"id": f"r{resource}", "n": round_})
                    await enqueue(conn, SCHEMA, event)
                    written.append(event)
        messages = await _received(queue, len(written), timeout=30)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for relay in relays:
            await relay.close()
    bodies = [orjson.loads(m.body) for m in messages]
    assert sorted(b["id"] for b in bodies) == sorted(e["id"] for e in written)
    for resource in range(5):
        sequence = [b["data"]["n"] for b in bodies if b["data"]["id"] == f"r{resource}"]
        assert sequence == list(range(30)), sequence


async def _write_quietly(db: Database, event: dict[str, object]) -> None:
    """An outbox row written without NOTIFY, as a create does when its process's relay runs."""
    async with db.connection() as conn:
        await conn.execute(
            "INSERT INTO outbox (id, topic, body, headers) VALUES ($1, $2, $3, '{}')",
            uuid.UUID(str(event["id"])),
            event["type"],
            orjson.dumps(event),
        )


async def test_a_write_of_the_relays_process_wakes_it_without_notify(outbox) -> None:  # type: ignore[no-untyped-def]
    db, broker, exchange, queue = outbox
    relay = _Passes(db, broker, exchange, poll_seconds=NEVER)
    assert not relay.running
    async with _running(relay):
        await relay.passed()
        assert relay.running
        event = make_event("location.created", {"n": 1})
        await _write_quietly(db, event)
        relay.wake()
        (message,) = await _received(queue, 1)  # woken: the poll never comes
        assert message.message_id == event["id"]
    assert not relay.running


class _SlowToMark(OutboxRelay):
    """A relay whose pass keeps the lock until `gate` opens (a long batch)."""

    gate: asyncio.Event
    marking: asyncio.Event  # set once it holds the lock, waiting at the gate

    async def mark_sent(self, conn: asyncpg.Connection, seqs: list[int]) -> None:
        self.marking.set()
        await self.gate.wait()
        await super().mark_sent(conn, seqs)


async def test_a_relay_woken_while_another_publishes_notifies_it(outbox) -> None:  # type: ignore[no-untyped-def]
    """Replica B's write woke B's relay only, while A's relay was in a pass that may have missed
    the row: B's relay NOTIFYs, and A passes again right after instead of at its poll."""
    db, broker, exchange, queue = outbox
    a = _SlowToMark(db, broker, exchange, poll_seconds=NEVER)
    a.gate, a.marking = asyncio.Event(), asyncio.Event()
    b = OutboxRelay(db, broker, exchange, poll_seconds=NEVER)
    tasks = [asyncio.create_task(a.run())]
    notified = asyncio.Event()
    listener = await asyncpg.connect(db.dsn)
    try:
        first = make_event("location.created", {"n": 1})
        async with db.transaction() as conn:
            await enqueue(conn, SCHEMA, first)  # NOTIFY: A takes it, and the lock, and waits
        async with asyncio.timeout(30):
            await a.marking.wait()
        # From here on, only B NOTIFYs (A waits at the gate; the quiet write does not).
        await listener.add_listener(notify_channel(SCHEMA), lambda *_: notified.set())
        tasks.append(asyncio.create_task(b.run()))
        second = make_event("location.created", {"n": 2})
        await _write_quietly(db, second)
        b.wake()  # B is locked out: it NOTIFYs
        async with asyncio.timeout(30):
            await notified.wait()
        a.gate.set()  # A's pass ends; it heard the NOTIFY, so it passes again
        messages = await _received(queue, 2)  # woken: the poll never comes
        assert [m.message_id for m in messages] == [first["id"], second["id"]]
    finally:
        await listener.close()
        a.gate.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await a.close()
        await b.close()

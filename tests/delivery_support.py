"""Helpers of the webhook delivery tests: subscriptions written straight into the table, domain
events published to the test's exchange, and waits on what the engine does."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime
from typing import Any

import aio_pika
import asyncpg
import orjson
from aiohttp import web

from bench.harness import delete_amqp_names
from services.webhook_delivery import lanes
from services.webhook_delivery.app import MIGRATIONS
from services.webhook_delivery.engine.wiring import INDEX
from shared.amqp import Broker
from shared.config import Settings
from shared.events import make_event
from shared.service import prepare_database
from shared.webhooks import new_secret
from tests.receiver import Receiver

SCHEMA = "webhook_delivery"


async def connect(settings: Settings) -> asyncpg.Connection:
    """To the test database, migrated (whichever test of the session comes first)."""
    await prepare_database(settings, SCHEMA, MIGRATIONS)
    return await asyncpg.connect(settings.database_url, server_settings={"search_path": SCHEMA})


@contextlib.asynccontextmanager
async def own_lanes(settings: Settings) -> AsyncIterator[Broker]:
    """A broker connection with delivery lanes of its own (no other test's messages on them),
    deleted afterwards."""
    prefix = f"{settings.queue_prefix}.{uuid.uuid4().hex[:8]}"
    broker = Broker(settings.amqp_url, prefix=prefix)
    await broker.connect()
    try:
        channel = await broker.channel()
        for lane in lanes.LANES:
            await lanes.declare_lane(broker, channel, lane)
        await channel.close()
        yield broker
    finally:
        await broker.close()
        await delete_amqp_names(prefix)


async def insert_subscription(
    conn: asyncpg.Connection,
    url: str,
    topics: Iterable[str] = ("*",),
    *,
    owner_id: str | None = None,
    owner_roles: Iterable[str] = ("member",),
    active: bool = True,
    headers: dict[str, str] | None = None,
    secret: str | None = None,
    previous_secret: str | None = None,
    previous_secret_until: datetime | None = None,
    filter_: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A subscription row as the API would write it (the API is another branch's work)."""
    sub_id = uuid.uuid4()
    row = await conn.fetchrow(
        "INSERT INTO subscriptions (id, owner_id, owner_roles, url, url_key, topics, headers, active,"
        " secret, previous_secret, previous_secret_until, disabled_reason, filter)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11, $12, $13::jsonb) RETURNING *",
        sub_id,
        uuid.UUID(owner_id) if owner_id else uuid.uuid4(),
        list(owner_roles),
        url,
        f"{url}#{sub_id}",
        list(topics),
        orjson.dumps(headers or {}).decode(),
        active,
        secret or new_secret(),
        previous_secret,
        previous_secret_until,
        None if active else "disabled by the test",
        None if filter_ is None else orjson.dumps(filter_).decode(),
    )
    assert row is not None
    return dict(row)


async def wait_until(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll an async or plain `check` until it returns something truthy (`timeout` only bounds
    a hang: a busy machine may take long, never too long to pass)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


async def wait_indexed(app: web.Application, *subs: dict[str, Any], active: bool | None = None) -> None:
    """The engine's in-memory index has caught up with these rows."""

    def seen() -> bool:
        index = app[INDEX]
        for sub in subs:
            found = index.get(sub["id"])
            if found is None or (active is not None and found.active is not active):
                return False
        return True

    await wait_until(seen, what="the subscription index")


class Publisher:
    """Publishes domain events the way the resource service's relay does."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.connection: aio_pika.abc.AbstractConnection | None = None
        self.exchange: aio_pika.abc.AbstractExchange | None = None

    async def __aenter__(self) -> Publisher:
        self.connection = await aio_pika.connect(self.settings.amqp_url)
        channel = await self.connection.channel()
        self.exchange = await channel.declare_exchange(
            self.settings.domain_exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self.connection is not None:
            await self.connection.close()

    async def publish(self, event: dict[str, Any], exchange: str | None = None) -> bytes:
        assert self.connection is not None and self.exchange is not None
        body = orjson.dumps(event)
        target = self.exchange
        if exchange is not None:
            channel = await self.connection.channel()
            target = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        await target.publish(
            aio_pika.Message(body, message_id=event["id"], delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=event["type"],
        )
        return body

    async def event(self, topic: str, **data: Any) -> dict[str, Any]:
        event = make_event(topic, {"id": str(uuid.uuid4()), **data}, str(uuid.uuid4()))
        await self.publish(event)
        return event


async def deliveries_of(conn: asyncpg.Connection, sub_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT * FROM deliveries WHERE subscription_id = $1 ORDER BY created_at, id", sub_id
    )
    return [dict(r) for r in rows]


async def attempts_of(conn: asyncpg.Connection, delivery_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT * FROM delivery_attempts WHERE delivery_id = $1 ORDER BY id", delivery_id)
    return [dict(r) for r in rows]


async def wait_status(
    conn: asyncpg.Connection, sub_id: uuid.UUID, status: str, count: int = 1, timeout: float = 30.0
) -> list[dict[str, Any]]:
    async def check() -> list[dict[str, Any]] | None:
        rows = await deliveries_of(conn, sub_id)
        done = [r for r in rows if r["status"] == status]
        return done if len(done) >= count else None

    return await wait_until(check, timeout, f"{count} {status} deliveries of {sub_id}")


async def wait_scheduled(
    conn: asyncpg.Connection, sub_id: uuid.UUID, attempts: int, *, longer_than: float = -1.0
) -> float:
    """Wait until the subscription's delivery has made `attempts` attempts and waits, pending and
    unleased, for its next one more than `longer_than` seconds ahead; return how far ahead the
    worker scheduled it. That is next_attempt_at - updated_at, both set from the same
    statement's now(): exact, however long the machine took to get there."""

    async def check() -> list[float] | None:
        ahead = await conn.fetchval(
            "SELECT extract(epoch FROM next_attempt_at - updated_at)::float8 FROM deliveries"
            " WHERE subscription_id = $1 AND status = 'pending' AND attempts = $2 AND lease_until IS NULL",
            sub_id,
            attempts,
        )
        return [ahead] if ahead is not None and ahead > longer_than else None

    [ahead] = await wait_until(check, what=f"{sub_id}'s delivery to wait after {attempts} attempts")
    return float(ahead)


async def make_due(conn: asyncpg.Connection, sub_id: uuid.UUID) -> None:
    """Move the clock on for the subscription's pending deliveries: due now, as they would be
    once their time came (tests schedule far ahead, then say when that time has come)."""
    await conn.execute(
        "UPDATE deliveries SET next_attempt_at = now() WHERE subscription_id = $1 AND status = 'pending'",
        sub_id,
    )


async def stranded(conn: asyncpg.Connection, sub_id: uuid.UUID, lease: float | None = None) -> str:
    """A due delivery that no lane message carries (lost), optionally leased for `lease`
    seconds (negative: by a worker that died); its event id."""
    event_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO webhook_events (id, topic, body) VALUES ($1, 'location.created', $2)",
        event_id,
        b'{"id": "%s"}' % str(event_id).encode(),
    )
    await conn.execute(
        "INSERT INTO deliveries (id, subscription_id, event_id, topic, status, next_attempt_at,"
        " lease_until) VALUES ($1, $2, $3, 'location.created', 'pending', now(),"
        " now() + make_interval(secs => $4))",
        uuid.uuid4(),
        sub_id,
        event_id,
        lease,
    )
    return str(event_id)


async def sweep_marker(conn: asyncpg.Connection, sub_id: uuid.UUID, receiver: Receiver) -> str:
    """Instead of waiting to see that nothing more is sent: a lost delivery, due after
    everything before it, that only the sweeper finds; once it has arrived, the sweeper has
    passed over whatever was due before it. Its event id."""
    marker = await stranded(conn, sub_id)
    await wait_until(lambda: marker in receiver.ids(), what="the sweeper's marker delivery")
    return marker

"""RabbitMQ for Herald: one robust connection per process, a publisher that waits for broker
confirms, and consumers that ack only after the work is done."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import aio_pika
import aiormq
import orjson
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from shared import acks as coalesced
from shared.logging import request_id_var

log = logging.getLogger("herald.amqp")

Handler = Callable[[dict[str, Any], AbstractIncomingMessage], Awaitable[None]]


class PoisonMessage(Exception):
    """The message can never be handled: dead-letter it instead of requeueing it forever."""


class Broker:
    """The process's AMQP connection (reconnecting by itself), a confirming publish channel and
    the topic exchanges Herald uses, declared durable."""

    def __init__(self, url: str, prefix: str = "herald") -> None:
        self.url = url
        self.prefix = prefix
        self.connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        self._on_reconnect: list[Callable[[], None]] = []
        self._declare_lock = asyncio.Lock()

    async def connect(self) -> None:
        self.connection = await aio_pika.connect_robust(
            self.url, client_properties={"connection_name": f"{self.prefix}"}
        )
        self.connection.reconnect_callbacks.add(self._reconnected)
        self._publish_channel = await self.connection.channel(publisher_confirms=True)

    def _reconnected(self, _connection: Any) -> None:
        log.warning("AMQP connection re-established")
        for callback in self._on_reconnect:
            callback()

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        """Run `callback` after each reconnect (messages may have been missed meanwhile)."""
        self._on_reconnect.append(callback)

    async def exchange(self, name: str) -> AbstractExchange:
        exchange = self._exchanges.get(name)
        if exchange is not None:
            return exchange
        async with self._declare_lock:  # a first batch of publishes declares it once
            if name not in self._exchanges:
                assert self._publish_channel is not None, "connect() first"
                self._exchanges[name] = await self._publish_channel.declare_exchange(
                    name, aio_pika.ExchangeType.TOPIC, durable=True
                )
        return self._exchanges[name]

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        headers: dict[str, Any] | None = None,
    ) -> None:
        """Publish persistently and return once the broker confirmed (raises otherwise).
        Many calls may be in flight at once: confirms are then waited for together."""
        await self.publish_many(exchange, [(routing_key, body, message_id, headers)])

    async def publish_many(
        self,
        exchange: str,
        messages: Sequence[tuple[str, bytes, str, dict[str, Any] | None]],
    ) -> None:
        """Publish each (routing key, body, message id, headers) persistently, in this order,
        and return once the broker confirmed them all (raises if it refused or lost any).

        The same frames and properties as aio-pika's `Exchange.publish`, written straight to the
        underlying aiormq channel: without its per-message `Message` object and without
        waiting for each frame to be flushed before the next is queued (the confirms are what
        is waited for)."""
        await self.exchange(exchange)  # declared once, durable
        assert self._publish_channel is not None, "connect() first"
        if self._publish_channel.is_closed:
            raise aiormq.exceptions.ChannelInvalidStateError("the publish channel is closed")
        channel = await self._publish_channel.get_underlay_channel()
        assert isinstance(channel, aiormq.Channel)  # `wait` is the concrete channel's
        rid = request_id_var.get()
        confirms = []
        for routing_key, body, message_id, headers in messages:
            all_headers = dict(headers or {})
            if rid and "x-request-id" not in all_headers:
                all_headers["x-request-id"] = rid
            properties = aiormq.spec.Basic.Properties(
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                headers=all_headers,
                message_id=message_id,
                priority=0,
            )
            confirms.append(
                channel.basic_publish(
                    body,
                    exchange=exchange,
                    routing_key=routing_key,
                    properties=properties,
                    mandatory=False,
                    timeout=30,
                    wait=False,
                )
            )
        if len(confirms) == 1:
            await confirms[0]
        else:
            await asyncio.gather(*confirms)

    async def channel(self, prefetch: int = 100) -> AbstractChannel:
        assert self.connection is not None, "connect() first"
        channel = await self.connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        return channel

    async def work_queue(
        self, channel: AbstractChannel, name: str, exchange: str, keys: Iterable[str]
    ) -> AbstractQueue:
        """A durable quorum queue for work that must not be lost, dead-lettering what fails
        too often to `<prefix>.dead-letter`."""
        dead = f"{self.prefix}.dead-letter"
        dlx = await channel.declare_exchange(dead, aio_pika.ExchangeType.FANOUT, durable=True)
        dlq = await channel.declare_queue(dead, durable=True, arguments={"x-queue-type": "quorum"})
        await dlq.bind(dlx)
        ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(
            name,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": 20,
                "x-dead-letter-exchange": dead,
            },
        )
        for key in keys:
            await queue.bind(ex, routing_key=key)
        return queue

    async def broadcast_queue(
        self, channel: AbstractChannel, exchange: str, keys: Iterable[str]
    ) -> AbstractQueue:
        """A private, server-named queue: every process gets its own copy of these messages
        (cache invalidation), and the queue goes away with the process."""
        ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue("", exclusive=True, auto_delete=True)
        for key in keys:
            await queue.bind(ex, routing_key=key)
        return queue

    async def ping(self) -> None:
        if self.connection is None or self.connection.is_closed:
            raise ConnectionError("AMQP connection is closed")
        if self._publish_channel is None or self._publish_channel.is_closed:
            raise ConnectionError("AMQP channel is closed")

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()


async def consume(queue: AbstractQueue, handler: Handler, *, retry_delay: float = 1.0) -> str:
    """Run `handler(event, message)` for each message: ack after it returns, dead-letter on a
    poison message, requeue after `retry_delay` on any other failure. Returns the consumer tag.
    Acks are coalesced per channel (shared/acks.py)."""

    async def on_message(message: AbstractIncomingMessage) -> None:
        acks = coalesced.for_channel(message)
        acks.received(message)
        finished = False
        rid = (message.headers or {}).get("x-request-id")
        token = request_id_var.set(str(rid) if rid else None)
        try:
            try:
                event = orjson.loads(message.body)
                if not isinstance(event, dict):
                    raise PoisonMessage("the body is not a JSON object")
                await handler(event, message)
            except (PoisonMessage, orjson.JSONDecodeError) as exc:
                log.error(
                    "dead-lettering message %s from %s: %s",
                    message.message_id,
                    queue.name,
                    exc,
                )
                await message.reject(requeue=False)
            except Exception:
                log.exception("handling message %s failed; requeueing", message.message_id)
                await asyncio.sleep(retry_delay)
                await message.nack(requeue=True)
            else:
                acks.finished(message)
                finished = True
        finally:
            if not finished:
                acks.dropped(message)
            request_id_var.reset(token)

    return await queue.consume(on_message)

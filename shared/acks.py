"""Coalesced acknowledgements for a consumer: messages that finish in the same turn of the event
loop, oldest first and without a gap, are acknowledged with one `multiple` ack (one frame, one
write, instead of one each). A finished message behind one still being handled is acknowledged
on its own at once, so one slow message never holds the others' acks (nor the prefetch window).

Delivery tags belong to the channel, and a `multiple` ack covers every consumer's messages on
it: so there is one Acks per channel (`for_channel`), and every consumer on a channel that uses
it must acknowledge through it (shared.amqp.consume does)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

log = logging.getLogger("herald.amqp")


_BY_CHANNEL: weakref.WeakKeyDictionary[Any, Acks] = weakref.WeakKeyDictionary()


def for_channel(message: AbstractIncomingMessage) -> Acks:
    """The Acks of the channel this message came on (the AMQP channel, which a reconnect
    replaces)."""
    acks = _BY_CHANNEL.get(message.channel)
    if acks is None:
        acks = _BY_CHANNEL[message.channel] = Acks()
    return acks


class Acks:
    def __init__(self) -> None:
        self._channel: Any = None
        # Delivery tag -> the message once finished (None while it is being handled), in the
        # order the broker delivered them (the order of delivery tags on one channel).
        self._open: dict[int, AbstractIncomingMessage | None] = {}
        self._flush_soon = False
        self._sending: set[asyncio.Task[None]] = set()

    def received(self, message: AbstractIncomingMessage) -> None:
        if message.channel is not self._channel:
            # A new channel (the connection came back): tags start again, and the old
            # channel's unacknowledged messages went back to the queue with it.
            self._channel = message.channel
            self._open.clear()
        if message.delivery_tag is not None:
            self._open[message.delivery_tag] = None

    def dropped(self, message: AbstractIncomingMessage) -> None:
        """Settled otherwise (rejected, requeued) or never to be (cancelled mid-way): not one
        to acknowledge, nor one to wait for."""
        if message.channel is self._channel and self._open.get(message.delivery_tag or -1, 0) is None:
            del self._open[message.delivery_tag or -1]

    def finished(self, message: AbstractIncomingMessage) -> None:
        tag = message.delivery_tag
        if message.channel is not self._channel or tag not in self._open:
            self._send(message.ack())  # not tracked: acknowledge it alone
            return
        self._open[tag] = message
        if not self._flush_soon:
            self._flush_soon = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_soon = False
        last: AbstractIncomingMessage | None = None
        while self._open:
            tag, message = next(iter(self._open.items()))
            if message is None:
                break
            del self._open[tag]
            last = message
        if last is not None:
            self._send(last.ack(multiple=True))
        for tag, message in list(self._open.items()):
            if message is not None:
                del self._open[tag]
                self._send(message.ack())

    def _send(self, ack: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(_quietly(ack))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)


async def _quietly(ack: Any) -> None:
    # A channel that closed meanwhile: the broker hands those messages over again.
    with contextlib.suppress(Exception):
        await ack

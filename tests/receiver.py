"""A webhook receiver for tests: an aiohttp server on 127.0.0.1 that records every request and
answers from a script (status, delay, headers), then with a default answer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True)
class Answer:
    status: int = 200
    delay: float = 0.0  # seconds before answering (a hanging receiver)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() on arrival

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


class Receiver:
    def __init__(self, script: Iterable[Answer] = (), default: Answer | None = None) -> None:
        self.script = list(script)
        self.default = default or Answer()
        self.requests: list[Received] = []
        self._changed = asyncio.Condition()
        self.runner: web.AppRunner | None = None
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests it held at once
        self.url = ""

    async def start(self, path: str = "/hook") -> Receiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}{path}"
        return self

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        received = Received({k.lower(): v for k, v in request.headers.items()}, body, time.monotonic())
        async with self._changed:
            self.requests.append(received)
            self._changed.notify_all()
        answer = self.script.pop(0) if self.script else self.default
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            # Hang until the delay is over or the client gave up (closed the connection).
            deadline = time.monotonic() + answer.delay
            while time.monotonic() < deadline and request.transport is not None:
                if request.transport.is_closing():
                    break
                await asyncio.sleep(min(0.02, max(0.0, deadline - time.monotonic())))
        finally:
            self.in_flight -= 1
        return web.Response(status=answer.status, body=answer.body, headers=answer.headers)

    async def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """Wait until `count` requests arrived (fails the test after `timeout` seconds, which
        only bounds a hang)."""

        async def enough() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.requests) >= count)

        try:
            await asyncio.wait_for(enough(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"{self.url} got {len(self.requests)} requests in {timeout} s, not {count}"
            ) from None
        return list(self.requests)

    def ids(self) -> list[str]:
        return [r.webhook_id for r in self.requests]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


async def start_receiver(*answers: Answer, default: Answer | None = None) -> Receiver:
    return await Receiver(answers, default).start()

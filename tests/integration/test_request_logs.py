"""The one log line per request: below 400 at DEBUG (cheap under load), 400 and above at INFO
or higher; a client that hangs up in the middle of its body is a quiet 499 (INFO, no
traceback, 499 in the request metrics), not a 500 with an error."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import REGISTRY

from shared.authn import public
from shared.config import Settings
from shared.service import base_app
from shared.web.json_io import json_response, read_json

SERVICE, PATH = "request-log-probe", "/v2/echo"


class RequestLines(logging.Handler):
    """Collects herald.http's request lines and wakes a waiter when one for `path` arrives."""

    def __init__(self, path: str) -> None:
        super().__init__(logging.DEBUG)
        self.path = path
        self.records: list[logging.LogRecord] = []
        self.arrived = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        if getattr(record, "path", None) == self.path or f" {self.path} " in record.getMessage():
            self.arrived.set()


@pytest.fixture
def request_lines() -> Any:
    handlers: list[RequestLines] = []
    logger = logging.getLogger("herald.http")
    level = logger.level

    def watch(path: str) -> RequestLines:
        handler = RequestLines(path)
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        handlers.append(handler)
        return handler

    yield watch
    for handler in handlers:
        logger.removeHandler(handler)
    logger.setLevel(level)


def _count(status: str) -> float:
    value = REGISTRY.get_sample_value(
        "herald_http_requests_total",
        {"service": SERVICE, "method": "POST", "route": PATH, "status": status},
    )
    return value or 0.0


@public
async def echo(request: web.Request) -> web.Response:
    return json_response(await read_json(request))


@public
async def boom(request: web.Request) -> web.Response:
    raise RuntimeError("a bug")


@pytest.fixture
async def serve_echo(settings: Settings) -> AsyncIterator[Any]:
    """`await serve_echo(handler_cancellation)`: the app every service starts from (base_app:
    the request log and metrics, problem answers) with a route that reads a JSON body, on a
    free port behind aiohttp's own server, as `python -m services.<name>` runs it
    (handler_cancellation=False, aiohttp's default: the handler sees the lost connection as an
    error) or as aiohttp's test server does (True: the handler is cancelled)."""
    runners: list[web.AppRunner] = []

    async def start(handler_cancellation: bool) -> int:
        app = base_app(settings, SERVICE)
        app.router.add_post(PATH, echo)
        app.router.add_post("/v2/boom", boom)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=handler_cancellation)
        await runner.setup()
        runners.append(runner)
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return int(runner.addresses[0][1])

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.mark.parametrize("handler_cancellation", [False, True], ids=["as-deployed", "handler-cancelled"])
async def test_a_client_that_hangs_up_mid_body_is_a_quiet_499(
    serve_echo: Any,
    handler_cancellation: bool,
    request_lines: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = await serve_echo(handler_cancellation)
    lines = request_lines(PATH)
    before_499, before_500 = _count("499"), _count("500")
    caplog.set_level(logging.DEBUG)
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"POST {PATH} HTTP/1.1\r\nHost: herald\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n".encode()
        + b'{"email": '
    )
    await writer.drain()
    writer.close()  # 10 bytes of the 1000 announced, then gone
    await writer.wait_closed()
    await asyncio.wait_for(lines.arrived.wait(), timeout=30)
    (line,) = [r for r in lines.records if PATH in r.getMessage()]
    assert line.levelno == logging.INFO and getattr(line, "status", None) == 499, line.getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], [
        r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING
    ]
    assert not [r for r in caplog.records if r.exc_info]
    assert (_count("499"), _count("500")) == (before_499 + 1, before_500)


async def test_answers_below_400_are_logged_at_debug_the_rest_at_info_or_above(
    serve_echo: Any, request_lines: Any
) -> None:
    port = await serve_echo(False)
    lines = request_lines(PATH)
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:
        for body, path in ((b'{"a": 1}', PATH), (b"{not json", PATH), (b"{}", "/v2/boom")):
            async with session.post(path, data=body, headers={"Content-Type": "application/json"}):
                pass
    levels = {r.getMessage(): r.levelno for r in lines.records}
    assert levels == {
        f"POST {PATH} 200": logging.DEBUG,
        f"POST {PATH} 400": logging.INFO,
        "POST /v2/boom 500": logging.WARNING,
    }

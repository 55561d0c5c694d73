"""The physical limit of "gateway + service" in Python on this machine: a bare aiohttp proxy
(one process) in front of a hello-world aiohttp app (another process), both on uvloop like the
services. Nothing else: no token check, no database, no logging.

    python bench/baseline.py hello PORT
    python bench/baseline.py proxy PORT UPSTREAM_URL
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import aiohttp
import uvloop
from aiohttp import web

HELLO = b'{"hello":"world"}'


def hello_app() -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(body=HELLO, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", hello)
    return app


def proxy_app(upstream: str) -> web.Application:
    app = web.Application()
    session_key = web.AppKey("session", aiohttp.ClientSession)

    async def session_ctx(app: web.Application) -> AsyncIterator[None]:
        app[session_key] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        yield
        await app[session_key].close()

    async def forward(request: web.Request) -> web.Response:
        async with app[session_key].request(request.method, upstream + request.path_qs) as resp:
            body = await resp.read()
            return web.Response(body=body, status=resp.status, content_type=resp.content_type)

    app.cleanup_ctx.append(session_ctx)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


@contextmanager
def two_hops(hello_port: int, proxy_port: int) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """Both processes started; yields the proxy's URL and the (hello, proxy) processes."""
    script = __file__
    procs = [
        subprocess.Popen([sys.executable, script, "hello", str(hello_port)], stderr=subprocess.DEVNULL),
        # Quiet: until hello listens, the proxy logs each refused connection of the wait below.
        subprocess.Popen(
            [sys.executable, script, "proxy", str(proxy_port), f"http://127.0.0.1:{hello_port}"],
            stderr=subprocess.DEVNULL,
        ),
    ]
    try:
        url = f"http://127.0.0.1:{proxy_port}/hello"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                import urllib.request

                with urllib.request.urlopen(url, timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        yield url, procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)


def main(argv: list[str]) -> None:
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    kind, port = argv[0], int(argv[1])
    app = hello_app() if kind == "hello" else proxy_app(argv[2])
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main(sys.argv[1:])

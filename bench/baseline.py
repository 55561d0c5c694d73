"""The physical limit of "edge + service" on this machine: nginx configured as the edge is (a
keep-alive upstream, a JSON access log) in front of a hello-world aiohttp app on uvloop like the
services. Nothing else: no token check, no database. The former baseline, a bare aiohttp proxy
in front of the same app, is kept as a reference.

    python bench/baseline.py hello PORT
    python bench/baseline.py proxy PORT UPSTREAM_URL
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

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
        until_answered(url, procs)
        yield url, procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)


NGINX = "/usr/sbin/nginx"

# The same kind of configuration as the edge's: master and one worker a core, an upstream with
# kept-alive connections, HTTP/1.1 to it, a request id and the client address passed on and a
# JSON access log.
NGINX_CONF = """
daemon off;
master_process on;
worker_processes auto;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    log_format json escape=json '{{"time":"$time_iso8601","request_id":"$request_id",'
        '"remote":"$remote_addr","method":"$request_method","uri":"$request_uri",'
        '"status":$status,"bytes":$body_bytes_sent,"duration_s":$request_time,'
        '"upstream_s":"$upstream_response_time"}}';
    access_log {prefix}/access.log json;
    upstream hello {{
        server 127.0.0.1:{hello_port};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://hello;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Request-ID $request_id;
            proxy_set_header X-Forwarded-For $remote_addr;
        }}
    }}
}}
"""


@contextmanager
def nginx_two_hops(hello_port: int, nginx_port: int) -> Iterator[tuple[str, dict[str, int]]]:
    """nginx (in the foreground, everything under a temporary prefix) in front of the hello app;
    yields nginx's URL and the processes' pids: `hello`, `nginx master`, `nginx worker`, ..."""
    prefix = Path(tempfile.mkdtemp(prefix="herald-bench-nginx-"))
    prefix.chmod(0o755)  # nginx's workers drop root for nobody and still write under it
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONF.format(prefix=prefix, port=nginx_port, hello_port=hello_port))
    hello = subprocess.Popen([sys.executable, __file__, "hello", str(hello_port)], stderr=subprocess.DEVNULL)
    nginx = subprocess.Popen(
        [NGINX, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{nginx_port}/hello"
        try:
            until_answered(url, [hello, nginx])
        except RuntimeError as failed:
            raise RuntimeError(f"{failed}; nginx's error log: {(prefix / 'error.log').read_text()}") from None
        from bench.harness import suite_processes  # here: this file also runs as a script, without `bench`

        pids = {"hello": hello.pid, **suite_processes(nginx.pid)}
        pids["nginx master"] = pids.pop("suite")
        yield url, pids
    finally:
        for proc in (nginx, hello):
            proc.terminate()
        for proc in (nginx, hello):
            proc.wait(10)
        shutil.rmtree(prefix, ignore_errors=True)


def until_answered(url: str, procs: list[subprocess.Popen[bytes]], seconds: float = 20) -> None:
    """Until `url` answers 200; a clear failure if one of `procs` exits or time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} while starting")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 (our own http URL)
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {seconds:g} s")


def main(argv: list[str]) -> None:
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    kind, port = argv[0], int(argv[1])
    app = hello_app() if kind == "hello" else proxy_app(argv[2])
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main(sys.argv[1:])

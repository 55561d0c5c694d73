"""The gateway's own upstream client against small raw servers: reuse, retry, framing, timeouts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from services.gateway.upstream import Upstream, UpstreamDisconnected, UpstreamTimeout, UpstreamUnavailable

pytestmark = pytest.mark.unit

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


async def _request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One request's head and (Content-Length or chunked) body."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    body = b""
    for line in lines:
        if line.startswith(b"content-length:"):
            body = await reader.readexactly(int(line.split(b":")[1]))
    if b"transfer-encoding: chunked" in lines:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            body += (await reader.readexactly(size + 2))[:size]
            if size == 0:
                break
    return head, body


async def _serve(handler: Handler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


def _head(path: str = "/", method: str = "GET") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode()


async def test_connections_are_kept_and_reused() -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            try:
                await _request(reader)
            except asyncio.IncompleteReadError:
                break
            writer.write(OK)
        writer.close()

    server, url = await _serve(handler)
    pool = Upstream(url, read_timeout=5)
    for _ in range(3):
        exchange = await pool.send("GET", _head())
        try:
            assert exchange.status == 200 and await exchange.read() == b"ok"
            assert ("Content-Type", "text/plain") in exchange.headers
        finally:
            exchange.release()
    assert connections == 1
    await pool.close()
    server.close()


async def test_an_idempotent_request_is_retried_once_when_a_kept_connection_was_closed() -> None:
    """The server answers the first request of each connection and hangs up on the second, as
    a server closing an idle connection just as it is reused would."""
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, _ = await _request(reader)
        seen.append(head.split(b" ")[0])
        writer.write(OK)
        await writer.drain()
        try:
            await _request(reader)
        except asyncio.IncompleteReadError:
            pass
        writer.close()

    server, url = await _serve(handler)
    pool = Upstream(url, read_timeout=5)
    for method in ("GET", "GET"):
        exchange = await pool.send(method, _head(method=method))
        assert await exchange.read() == b"ok"
        exchange.release()
    # A POST on a connection that may have been closed is not sent again: it fails.
    with pytest.raises(UpstreamDisconnected):
        exchange = await pool.send("POST", _head(method="POST"), b"")
    assert seen == [b"GET", b"GET"]
    await pool.close()
    server.close()


async def test_chunked_streamed_head_and_interim_answers() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head, body = await _request(reader)
            except asyncio.IncompleteReadError:
                break
            path = head.split(b" ")[1]
            if path == b"/chunked":
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                for part in (b"abc", b"defg"):
                    writer.write(b"%x\r\n%b\r\n" % (len(part), part))
                    await writer.drain()
                    await asyncio.sleep(0.01)
                writer.write(b"0\r\n\r\n")
            elif path == b"/head":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            elif path == b"/continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone")
            elif path == b"/echo":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body))
            elif path == b"/until-close":
                writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it")
                await writer.drain()
                writer.close()
                return
        writer.close()

    server, url = await _serve(handler)
    pool = Upstream(url, read_timeout=5)

    exchange = await pool.send("GET", _head("/chunked"))
    assert [chunk async for chunk in exchange.iter_chunks()] == [b"abc", b"defg"]
    exchange.release()

    exchange = await pool.send("HEAD", _head("/head", "HEAD"))
    assert exchange.status == 200 and await exchange.read() == b""
    exchange.release()

    exchange = await pool.send("GET", _head("/continue"))
    assert exchange.status == 201 and await exchange.read() == b"done"
    exchange.release()

    async def parts() -> AsyncIterator[bytes]:
        for part in (b"x" * 70_000, b"", b"yz"):
            yield part

    head = b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
    exchange = await pool.send("POST", head, stream=parts())
    assert await exchange.read() == b"x" * 70_000 + b"yz"
    exchange.release()

    exchange = await pool.send("GET", _head("/until-close"))
    assert b"".join([chunk async for chunk in exchange.iter_chunks()]) == b"all of it"
    exchange.release()
    await pool.close()
    server.close()


async def test_timeouts_and_refusals() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request(reader)
        await asyncio.sleep(2)
        writer.close()

    server, url = await _serve(silent)
    pool = Upstream(url, read_timeout=0.2)
    with pytest.raises(UpstreamTimeout):
        await pool.send("GET", _head())
    assert isinstance(UpstreamTimeout(), TimeoutError)
    await pool.close()
    server.close()
    await server.wait_closed()

    refused = Upstream(url, read_timeout=1)
    with pytest.raises(UpstreamUnavailable):
        await refused.send("GET", _head())


async def test_an_answer_cut_short_fails() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
        await writer.drain()
        writer.close()

    server, url = await _serve(handler)
    pool = Upstream(url, read_timeout=5)
    exchange = await pool.send("GET", _head())
    with pytest.raises(UpstreamDisconnected):
        await exchange.read()
    exchange.release()
    await pool.close()
    server.close()

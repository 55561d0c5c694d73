"""The gateway's own HTTP/1.1 client for its hop to the services: one pool of kept-alive
connections per service, the request head written as one block of bytes, the answer parsed by
httptools (llhttp). aiohttp's ClientSession did the same with several times the CPU per request,
and this hop is the most expensive thing on the read path (see PERFORMANCE.md).

What it keeps from a general client: request bodies sized or streamed (chunked), answers read
whole or streamed with flow control, connect and read timeouts, 1xx interim answers skipped,
answers to HEAD, answers delimited by the connection's end, and one retry of an idempotent
request on a fresh connection when a kept-alive one turned out closed before anything of the
answer arrived. Failures are `UpstreamError`s (or `TimeoutError`) for the caller to turn into
problems."""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
from collections.abc import AsyncIterator
from typing import cast

import httptools
from yarl import URL

_HIGH_WATER = 256 * 1024  # unread answer bytes before the upstream socket stops being read
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


class UpstreamError(Exception):
    """The upstream could not be used or did not answer properly (what `kind` says)."""

    kind = "UpstreamError"


class UpstreamUnavailable(UpstreamError):
    """No connection could be made."""

    kind = "ConnectionRefused"


class UpstreamDisconnected(UpstreamError):
    """The connection ended before the whole answer arrived."""

    kind = "ServerDisconnectedError"


class BadAnswer(UpstreamError):
    """The bytes that came back were not an HTTP/1.1 answer."""

    kind = "ClientResponseError"


class UpstreamTimeout(TimeoutError):
    pass


class _Connection(asyncio.Protocol):
    """One connection, carrying one exchange at a time."""

    def __init__(self, pool: Upstream) -> None:
        self.pool = pool
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self.busy = False
        self._write_paused = False
        self._drain: asyncio.Future[None] | None = None
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.head: asyncio.Future[None] | None = None
        self.head_only = False
        self.headed = False
        self.received = False
        self.complete = False
        self.keep_alive = False
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.read_paused = False
        self._interim = False
        self._timer: asyncio.TimerHandle | None = None

    # -- the transport's side -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        if not self.busy:  # bytes nobody asked for: this connection cannot be trusted any more
            self.close()
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(BadAnswer(f"not an HTTP answer: {exc}"))
            self.close()

    def eof_received(self) -> bool:
        self.closed = True  # no new request on it from now: the transport is closing
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool._lost(self)
        if self.busy and self.headed and not self.complete and self._delimited_by_close():
            self.complete = True
            self.keep_alive = False
            self._wake()
        else:
            self._fail(UpstreamDisconnected("the connection ended before the whole answer"))
        if self._drain is not None and not self._drain.done():
            self._drain.set_exception(UpstreamDisconnected("the connection ended while sending"))

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        self._drain = None

    async def drain(self) -> None:
        if self.closed:
            raise UpstreamDisconnected("the connection ended while sending")
        if self._write_paused:
            self._drain = self.loop.create_future()
            await self._drain

    # -- the parser's side ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.headers = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1"), value.decode("utf-8", "surrogateescape")))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            self._interim = True  # 100 Continue and the like: the real answer follows
            return
        self.status = status
        self.headed = True
        self.keep_alive = self.parser.should_keep_alive()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.head_only:  # an answer to HEAD has no body, whatever Content-Length says
            self.complete = True
            self.keep_alive = False
        if self.head is not None and not self.head.done():
            self.head.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self.head_only:
            return
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and not self.read_paused and self.transport is not None:
            self.read_paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        if self.head_only:
            return
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()
        self._wake()

    # -- the exchange ---------------------------------------------------------------------

    def _delimited_by_close(self) -> bool:
        for name, value in self.headers:
            lowered = name.lower()
            if lowered == "content-length" or (lowered == "transfer-encoding" and "chunked" in value.lower()):
                return False
        return True

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.head is not None and not self.head.done():
            self.head.set_exception(exc)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    def _timed_out(self) -> None:
        self._timer = None
        self._fail(UpstreamTimeout("the upstream did not answer in time"))
        self.close()

    def writer_done(self, task: asyncio.Task[None]) -> None:
        """A streamed body that failed (too large, the client gone) fails the exchange too."""
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._fail(exc)
            self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def start(self, head: bytes, body: bytes | None, head_only: bool, timeout: float | None) -> None:
        """Send the request (a sized body goes with its head) and expect the answer."""
        assert self.transport is not None
        self._reset()
        if self.closed or self.transport.is_closing():
            raise UpstreamDisconnected("the connection ended before the request was sent")
        self.busy = True
        self.head_only = head_only
        self.head = self.loop.create_future()
        if timeout is not None:
            self._timer = self.loop.call_later(timeout, self._timed_out)
        if body:
            self.transport.write(head + body)
        else:
            self.transport.write(head)

    async def body(self) -> AsyncIterator[bytes]:
        """The answer's body as it arrives; each wait for more is bounded by the read timeout."""
        while True:
            while self.chunks:
                chunk = self.chunks.popleft()
                self.buffered -= len(chunk)
                if self.read_paused and self.buffered <= _HIGH_WATER // 4 and self.transport is not None:
                    self.read_paused = False
                    self.transport.resume_reading()
                yield chunk
            if self.complete:
                return
            await self.more()

    async def more(self) -> None:
        """Wait for more of the answer, at most the read timeout."""
        if self.error is not None:
            raise self.error
        self.waiter = self.loop.create_future()
        try:
            async with asyncio.timeout(self.pool.read_timeout):
                await self.waiter
        except TimeoutError:
            raise UpstreamTimeout("the upstream stopped sending") from None
        finally:
            self.waiter = None

    def whole_body(self) -> bytes:
        body = b"".join(self.chunks)
        self.chunks.clear()
        self.buffered = 0
        return body


class Exchange:
    """An answer in progress: status and headers are there, the body may still be coming.
    `release()` (always, in a finally) gives the connection back or closes it."""

    __slots__ = ("_conn", "_writer", "headers", "status")

    def __init__(self, conn: _Connection, writer: asyncio.Task[None] | None) -> None:
        self._conn = conn
        self._writer = writer
        self.status = conn.status
        self.headers = conn.headers

    @property
    def complete(self) -> bool:
        return self._conn.complete

    async def read(self) -> bytes:
        """The whole body; each wait for more is bounded by the read timeout."""
        conn = self._conn
        while not conn.complete:
            if conn.read_paused and conn.transport is not None:
                conn.read_paused = False
                conn.transport.resume_reading()
            await conn.more()
        return conn.whole_body()

    def iter_chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives (the connection is read at most 256 KiB ahead)."""
        return self._conn.body()

    def release(self) -> None:
        conn = self._conn
        reusable = conn.complete and conn.keep_alive and conn.error is None and not conn.closed
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
            reusable = False
        conn.pool._release(conn, reusable)


class Upstream:
    """Kept-alive connections to one service (at most `limit` open at once)."""

    def __init__(
        self,
        base_url: str,
        *,
        limit: int = 512,
        connect_timeout: float | None = 5.0,
        read_timeout: float | None = None,
        keepalive: float = 60.0,
    ) -> None:
        url = URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"an upstream must be an http(s) URL, not {base_url!r}")
        self.host = url.host
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.ssl: ssl.SSLContext | None = ssl.create_default_context() if url.scheme == "https" else None
        host = f"[{url.host}]" if ":" in url.host else url.host
        self.host_header = host if url.is_default_port() else f"{host}:{self.port}"
        self.path_prefix = url.raw_path.rstrip("/")
        self.limit = limit
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.keepalive = keepalive
        self.loop = asyncio.get_running_loop()
        self._idle: list[_Connection] = []
        self._open = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._closed = False

    async def _acquire(self) -> tuple[_Connection, bool]:
        """A kept-alive connection (True) or a new one (False)."""
        while True:
            conn = self._reused()
            if conn is not None:
                return conn, True
            if self._open < self.limit:
                return await self._connect(), False
            waiter = self.loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    async def _connect(self) -> _Connection:
        self._open += 1
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await self.loop.create_connection(
                    lambda: _Connection(self),
                    self.host,
                    self.port,
                    ssl=self.ssl,
                    server_hostname=self.host if self.ssl is not None else None,
                )
        except TimeoutError:
            self._one_less()
            raise UpstreamTimeout("no connection in time") from None
        except OSError as exc:
            self._one_less()
            raise UpstreamUnavailable(str(exc)) from None
        except BaseException:
            self._one_less()
            raise
        return conn

    def _one_less(self) -> None:
        self._open -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break

    def _reused(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if conn.closed or conn.transport is None or conn.transport.is_closing():
                continue
            if now - conn.idle_since > self.keepalive:
                conn.close()
                continue
            return conn
        return None

    def _release(self, conn: _Connection, reusable: bool) -> None:
        conn.busy = False
        conn.waiter = None
        conn.head = None
        if conn._timer is not None:
            conn._timer.cancel()
            conn._timer = None
        if reusable and not self._closed:
            conn.idle_since = time.monotonic()
            conn.chunks.clear()
            self._idle.append(conn)
            self._wake_one()
        else:
            conn.close()

    def _lost(self, conn: _Connection) -> None:
        if conn in self._idle:
            self._idle.remove(conn)
        self._one_less()

    async def send(
        self,
        method: str,
        head: bytes,
        body: bytes | None = None,
        stream: AsyncIterator[bytes] | None = None,
    ) -> Exchange:
        """Send the request whose head (request line and headers, blank line included) is
        `head`, with a sized `body` or a `stream` of chunks (sent chunked); wait for the
        answer's status and headers."""
        conn, reused = await self._acquire()
        retry = reused and stream is None and method in _IDEMPOTENT
        while True:
            writer = None
            try:
                conn.start(head, body, method == "HEAD", self.read_timeout)
                assert conn.head is not None
                if stream is not None:
                    writer = self.loop.create_task(_send_chunks(conn, stream))
                    writer.add_done_callback(conn.writer_done)
                await conn.head
                return Exchange(conn, writer)
            except UpstreamDisconnected:
                if writer is not None and not writer.done():
                    writer.cancel()
                self._release(conn, False)
                if retry and not conn.received:
                    retry = False
                    conn = await self._connect()
                    continue
                raise
            except BaseException:
                if writer is not None and not writer.done():
                    writer.cancel()
                self._release(conn, False)
                raise

    async def close(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()


async def _send_chunks(conn: _Connection, stream: AsyncIterator[bytes]) -> None:
    transport = conn.transport
    assert transport is not None
    async for chunk in stream:
        if conn.closed or transport.is_closing():
            raise UpstreamDisconnected("the connection ended while sending")
        if chunk:
            transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            await conn.drain()
    if conn.closed or transport.is_closing():
        raise UpstreamDisconnected("the connection ended while sending")
    transport.write(b"0\r\n\r\n")

"""SIGTERM under load loses nothing: the suite runs as real processes (`python -m services`), a
bounded load of writes goes through the edge (users at auth and, where the resource service
has them, locations), and the launcher gets SIGTERM while requests are in flight. Then:

- every request either got a complete HTTP answer, or was refused before any server saw it
  (connection refused; or a connection the kernel had queued when the port closed, which no
  service logged and whose write does not exist);
- every write answered 201 is in the database, and nothing else was written;
- the outbox event of every such write was published (consumed from queues of the test's own,
  bound to the exchanges) and no outbox row is left unsent;
- every process exits 0, within the timeout, without an error logged.

And a service stopped on its own (a Kubernetes pod) ends the connections kept alive to it after
an answer, never under a request.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import asyncpg
import orjson
import pytest

from tests.conftest import AMQP_URL, ROOT
from tests.e2e import test_processes
from tests.e2e.test_processes import _children, _start_suite

pytestmark = [pytest.mark.timeout(150), pytest.mark.slow]

suite_env = test_processes.suite_env  # the same environment as the other process tests

ADMIN_PASSWORD = "shutdown-admin-pw-1"
WORKERS = 48
MAX_REQUESTS = 3000  # bounds the load even if the suite never stops
LOAD_SECONDS = 40.0
WARM_UP = 100  # writes answered before SIGTERM
SHUTDOWN_TIMEOUT = 10  # HERALD_SHUTDOWN_TIMEOUT for this test: far more than a request needs


@dataclass(frozen=True)
class Write:
    """One kind of write: how to make it, where it is stored, which event it publishes."""

    kind: str
    path: str
    body: Callable[[str], dict[str, Any]]  # from a unique tag
    stored: str  # SQL: (id, tag) of the rows the test wrote
    unsent: str  # SQL: outbox rows not yet published
    exchange_setting: str
    topic: str


USERS = Write(
    "user",
    "/v2/user/list",
    lambda tag: {"email": f"{tag}@load.test", "password": "load-password-1", "name": "Load"},
    "SELECT id::text, split_part(email, '@', 1) FROM auth.users WHERE email LIKE 'shutdown-%'",
    "SELECT count(*) FROM auth.outbox WHERE sent_at IS NULL",
    "HERALD_AUTH_EXCHANGE",
    "user.created",
)
LOCATIONS = Write(
    "location",
    "/v2/location/list",
    lambda tag: {"name": tag, "address": "1 Load Street", "capacity": 10, "timezone": "UTC"},
    "SELECT id::text, doc->>'name' FROM resource.resources"
    " WHERE type = 'location' AND doc->>'name' LIKE 'shutdown-%'",
    "SELECT count(*) FROM resource.outbox WHERE sent_at IS NULL",
    "HERALD_DOMAIN_EXCHANGE",
    "location.created",
)


@dataclass
class Outcome:
    write: Write
    tag: str  # also the request id
    started: float
    ended: float = 0.0
    status: int | None = None  # None: no HTTP answer
    created_id: str | None = None
    error: str | None = None


@dataclass
class Load:
    outcomes: list[Outcome] = field(default_factory=list)
    created: int = 0
    warmed_up: asyncio.Event = field(default_factory=asyncio.Event)  # WARM_UP writes answered
    stop: asyncio.Event = field(default_factory=asyncio.Event)  # SIGTERM was sent


async def _write(session: aiohttp.ClientSession, edge: str, token: str, outcome: Outcome) -> None:
    try:
        async with session.post(
            edge + outcome.write.path,
            json=outcome.write.body(outcome.tag),
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": outcome.tag},
            timeout=aiohttp.ClientTimeout(total=SHUTDOWN_TIMEOUT * 2),
        ) as resp:
            body = await resp.read()
            outcome.status = resp.status
            if resp.status == 201:
                outcome.created_id = orjson.loads(body)["id"]
    except aiohttp.ClientConnectorError as exc:
        outcome.error = f"refused: {exc}"
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        outcome.error = f"{type(exc).__name__}: {exc}"
    outcome.ended = time.monotonic()


async def _writer(edge: str, token: str, write: Write, load: Load) -> None:
    """One worker: writes one after the other, each on a new connection (so that a lost answer
    cannot hide behind a kept-alive connection closing), until the edge refuses connections
    after `load.stop` is set."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        while len(load.outcomes) < MAX_REQUESTS:
            outcome = Outcome(write, f"shutdown-{uuid.uuid4().hex}", time.monotonic())
            load.outcomes.append(outcome)
            await _write(session, edge, token, outcome)
            if outcome.status == 201:
                load.created += 1
                if load.created >= WARM_UP:
                    load.warmed_up.set()
            if outcome.error and load.stop.is_set() and outcome.error.startswith("refused"):
                return
            if outcome.error:
                await asyncio.sleep(0.05)


async def _published_ids(queue: aio_pika.abc.AbstractQueue, wanted: set[str]) -> set[str]:
    seen: set[str] = set()
    async with asyncio.timeout(20):
        while not wanted <= seen:
            message = await queue.get(fail=False)
            if message is None:
                break
            await message.ack()
            seen.add(orjson.loads(message.body)["data"]["id"])
    return seen


async def _writes_the_suite_has(edge: str, token: str) -> list[Write]:
    """Users always; locations once the resource service serves them (a 404 before)."""
    writes = [USERS]
    async with aiohttp.ClientSession() as session:
        probe = Outcome(LOCATIONS, f"shutdown-probe-{uuid.uuid4().hex}", time.monotonic())
        await _write(session, edge, token, probe)
        if probe.status == 201:
            writes.append(LOCATIONS)
        else:
            assert probe.status == 404, f"POST /v2/location/list answered {probe.status}"
    return writes


async def test_sigterm_under_load_loses_nothing(suite_env: dict[str, str], tmp_path: Path) -> None:
    env = {
        **suite_env,
        "HERALD_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "HERALD_SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT),
        "HERALD_REQUESTTOKEN_RATE": "0",
        "HERALD_USER_RATE": "0",
    }
    log_path = tmp_path / "suite.log"
    edge = f"http://127.0.0.1:{env['HERALD_EDGE_PORT']}"
    proc = await _start_suite(env, log_path)
    children = _children(proc.pid)
    amqp = await aio_pika.connect(AMQP_URL)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(
                edge + "/v2/requesttoken", json={"email": "root@e2e.local", "password": ADMIN_PASSWORD}
            ) as resp:
                assert resp.status == 200
                token = await resp.json()
        writes = await _writes_the_suite_has(edge, token)
        channel = await amqp.channel()
        event_queues = {}
        for write in writes:
            exchange = await channel.declare_exchange(
                env[write.exchange_setting], aio_pika.ExchangeType.TOPIC, durable=True
            )
            event_queues[write.kind] = await channel.declare_queue("", exclusive=True)
            await event_queues[write.kind].bind(exchange, write.topic)

        load = Load()
        workers = [
            asyncio.create_task(_writer(edge, token, writes[i % len(writes)], load)) for i in range(WORKERS)
        ]
        # Let the load settle in, then SIGTERM with requests in flight.
        await asyncio.wait_for(load.warmed_up.wait(), 30)
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        load.stop.set()
        async with asyncio.timeout(LOAD_SECONDS):
            await asyncio.gather(*workers)
        code = await asyncio.to_thread(proc.wait, SHUTDOWN_TIMEOUT * 2 + 20)
        stopped = time.monotonic() - signalled

        outcomes = load.outcomes
        answered = [o for o in outcomes if o.status is not None]
        created = {
            write.kind: {o.created_id for o in answered if o.write is write and o.created_id}
            for write in writes
        }
        published = {
            write.kind: await _published_ids(event_queues[write.kind], created[write.kind])
            for write in writes
        }
    finally:
        if proc.poll() is None:
            proc.kill()
        await amqp.close()

    logs = log_path.read_text()
    assert code == 0, logs[-3000:]
    assert stopped < SHUTDOWN_TIMEOUT * 2 + 15
    for child in children:
        assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text()
    for trouble in ("Traceback", '"level":"error"', "did not stop in time", "exited with"):
        assert trouble not in logs, trouble

    in_flight = [o for o in answered if o.started < signalled < o.ended]
    assert in_flight, "no request was in flight at SIGTERM: the test proved nothing"
    assert all(o.status == 201 for o in answered), sorted({o.status or 0 for o in answered})
    refused = [o for o in outcomes if (o.error or "").startswith("refused")]
    lost = [o for o in outcomes if o.status is None and o not in refused]

    conn = await asyncpg.connect(env["HERALD_DATABASE_URL"])
    try:
        stored = {write.kind: dict(await conn.fetch(write.stored)) for write in writes}
        unsent = {write.kind: await conn.fetchval(write.unsent) for write in writes}
    finally:
        await conn.close()
    for write in writes:
        kind = write.kind
        stored[kind] = {k: v for k, v in stored[kind].items() if not v.startswith("shutdown-probe-")}
        assert set(stored[kind]) == created[kind], f"{kind}: a 201 write is missing, or one got no 201"
        assert unsent[kind] == 0, f"{kind}: outbox rows left unsent"
        missing = created[kind] - published[kind]
        assert not missing, f"{kind}: {len(missing)} of {len(created[kind])} writes have no published event"
    tags = {tag for rows in stored.values() for tag in rows.values()}
    for o in lost:  # no answer: then no service may have seen it
        assert o.tag not in logs, f"{o.tag} was accepted but got no answer: {o.error}"
        assert o.tag not in tags
    print(  # the numbers, for the report (pytest -s)
        f"writes {[w.kind for w in writes]}: created {sum(len(c) for c in created.values())}, in flight "
        f"at SIGTERM {len(in_flight)}, refused {len(refused)}, unanswered but unseen {len(lost)} "
        f"{sorted({(o.error or '').split(':')[0] for o in lost})}, "
        f"all stopped in {stopped:.1f} s"
    )


def _connection_kinds() -> aiohttp.TraceConfig:
    """Tells each request (its trace_request_ctx, a dict) whether it went on a kept-alive
    connection or a new one."""
    trace = aiohttp.TraceConfig()

    async def reused(_session: Any, ctx: Any, _params: Any) -> None:
        if ctx.trace_request_ctx is not None:
            ctx.trace_request_ctx["connection"] = "reused"

    async def created(_session: Any, ctx: Any, _params: Any) -> None:
        if ctx.trace_request_ctx is not None:
            ctx.trace_request_ctx["connection"] = "new"

    trace.on_connection_reuseconn.append(reused)
    trace.on_connection_create_end.append(created)
    return trace


async def test_a_service_stopped_alone_ends_kept_alive_connections_cleanly(
    suite_env: dict[str, str], tmp_path: Path
) -> None:
    """What Kubernetes does to a service's pod while the edge still holds kept-alive
    connections to it: SIGTERM that process alone. A connection must end after an answer that
    says `Connection: close`, never under a request the client just sent (which the edge
    could not safely retry: a 502 for a POST). Measured before the fix: every one of the 16
    connections failed that way."""
    port = test_processes._free_ports(1)[0]
    env = {
        **suite_env,
        "HERALD_AUTH_PORT": str(port),
        "HERALD_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "HERALD_SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT),
    }
    auth_url = f"http://127.0.0.1:{port}"
    with open(tmp_path / "auth.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.auth"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    results: list[dict[str, Any]] = []
    try:
        await test_processes._wait_ready(auth_url + "/readyz")
        connector = aiohttp.TCPConnector(limit=16)
        async with aiohttp.ClientSession(connector=connector, trace_configs=[_connection_kinds()]) as session:
            async with session.post(
                auth_url + "/v2/requesttoken", json={"email": "root@e2e.local", "password": ADMIN_PASSWORD}
            ) as resp:
                token = await resp.json()
            load = Load()

            async def writer() -> None:
                while len(results) < MAX_REQUESTS:
                    tag = f"shutdown-{uuid.uuid4().hex}"
                    result: dict[str, Any] = {"tag": tag, "connection": "?"}
                    results.append(result)
                    try:
                        async with session.post(
                            auth_url + USERS.path,
                            json=USERS.body(tag),
                            headers={"Authorization": f"Bearer {token}", "X-Request-ID": tag},
                            trace_request_ctx=result,
                        ) as resp:
                            body = await resp.read()
                            result["status"] = resp.status
                            if resp.status == 201:
                                result["id"] = orjson.loads(body)["id"]
                                load.created += 1
                                if load.created >= WARM_UP:
                                    load.warmed_up.set()
                    except aiohttp.ClientConnectorError:
                        result["error"] = "refused"
                        if load.stop.is_set():
                            return
                    except (aiohttp.ClientError, OSError) as exc:
                        result["error"] = type(exc).__name__

            workers = [asyncio.create_task(writer()) for _ in range(16)]
            await asyncio.wait_for(load.warmed_up.wait(), 30)
            proc.send_signal(signal.SIGTERM)
            load.stop.set()
            async with asyncio.timeout(LOAD_SECONDS):
                await asyncio.gather(*workers)
        code = await asyncio.to_thread(proc.wait, SHUTDOWN_TIMEOUT * 2)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0
    cut = [r for r in results if r["connection"] == "reused" and r.get("error")]
    assert not cut, f"{len(cut)} requests were cut on kept-alive connections: {cut[:3]}"
    assert all(r.get("status") in (None, 201) for r in results), {r.get("status") for r in results}
    conn = await asyncpg.connect(env["HERALD_DATABASE_URL"])
    try:
        stored = dict(await conn.fetch(USERS.stored))
    finally:
        await conn.close()
    assert set(stored) == {r["id"] for r in results if r.get("status") == 201}
    logs = (tmp_path / "auth.log").read_text()
    for r in results:
        if r.get("error") and r["error"] != "refused":  # a new connection the closing port reset
            assert r["tag"] not in logs and r["tag"] not in stored.values()

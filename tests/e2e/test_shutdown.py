"""SIGTERM under load loses nothing: the suite runs as real processes (`python -m services`), a
bounded load of writes goes through the gateway, and the launcher gets SIGTERM while requests
are in flight. Then:

- every request either got a complete HTTP answer, or was refused before any server saw it
  (connection refused; or a connection the kernel had queued when the port closed, which no
  service logged and whose user does not exist);
- every write answered 201 is in the database, and nothing else was written;
- the outbox event of every such write was published (consumed from a queue of the test's own,
  bound to the auth exchange) and no outbox row is left unsent;
- every process exits 0, within the timeout, without an error logged.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
import aiohttp
import asyncpg
import orjson
import pytest

from tests.conftest import AMQP_URL
from tests.e2e import test_processes
from tests.e2e.test_processes import _children, _start_suite

pytestmark = pytest.mark.timeout(150)

suite_env = test_processes.suite_env  # the same environment as the other process tests

ADMIN_PASSWORD = "shutdown-admin-pw-1"
WORKERS = 48
MAX_REQUESTS = 3000  # bounds the load even if the suite never stops
LOAD_SECONDS = 40.0
WARM_UP = 100  # writes answered before SIGTERM
SHUTDOWN_TIMEOUT = 10  # HERALD_SHUTDOWN_TIMEOUT for this test: far more than a request needs


@dataclass
class Outcome:
    request_id: str
    email: str
    started: float
    ended: float
    status: int | None = None  # None: no HTTP answer
    user_id: str | None = None
    error: str | None = None


@dataclass
class Load:
    outcomes: list[Outcome] = field(default_factory=list)
    created: int = 0
    warmed_up: asyncio.Event = field(default_factory=asyncio.Event)  # WARM_UP writes answered
    stop: asyncio.Event = field(default_factory=asyncio.Event)  # SIGTERM was sent


async def _create_users(gateway: str, token: str, load: Load) -> None:
    """One worker: creates users one after the other, each on a new connection (so that a lost
    answer cannot hide behind a kept-alive connection closing), until the gateway refuses
    connections after `stop` is set."""
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        outcomes, stop = load.outcomes, load.stop
        while len(outcomes) < MAX_REQUESTS:
            rid = f"shutdown-{uuid.uuid4().hex}"
            email = f"{rid}@load.test"
            outcome = Outcome(rid, email, time.monotonic(), 0.0)
            outcomes.append(outcome)
            try:
                async with session.post(
                    gateway + "/v2/user/list",
                    json={"email": email, "password": "load-password-1", "name": "Load"},
                    headers={"Authorization": f"Bearer {token}", "X-Request-ID": rid},
                    timeout=aiohttp.ClientTimeout(total=SHUTDOWN_TIMEOUT * 2),
                ) as resp:
                    body = await resp.read()
                    outcome.status = resp.status
                    if resp.status == 201:
                        outcome.user_id = orjson.loads(body)["id"]
                        load.created += 1
                        if load.created >= WARM_UP:
                            load.warmed_up.set()
            except aiohttp.ClientConnectorError as exc:
                outcome.error = f"refused: {exc}"
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                outcome.error = f"{type(exc).__name__}: {exc}"
            outcome.ended = time.monotonic()
            if outcome.error and stop.is_set() and outcome.error.startswith("refused"):
                return
            if outcome.error:
                await asyncio.sleep(0.05)


async def _published_user_ids(queue: aio_pika.abc.AbstractQueue, wanted: set[str]) -> set[str]:
    seen: set[str] = set()
    async with asyncio.timeout(20):
        while not wanted <= seen:
            message = await queue.get(fail=False)
            if message is None:
                break
            await message.ack()
            seen.add(orjson.loads(message.body)["data"]["id"])
    return seen


async def test_sigterm_under_load_loses_nothing(suite_env: dict[str, str], tmp_path: Path) -> None:
    env = {
        **suite_env,
        "HERALD_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "HERALD_SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT),
        "HERALD_REQUESTTOKEN_RATE": "0",
        "HERALD_USER_RATE": "0",
    }
    log_path = tmp_path / "suite.log"
    gateway = f"http://127.0.0.1:{env['HERALD_GATEWAY_PORT']}"
    proc = await _start_suite(env, log_path)
    children = _children(proc.pid)
    amqp = await aio_pika.connect(AMQP_URL)
    try:
        channel = await amqp.channel()
        exchange = await channel.declare_exchange(
            env["HERALD_AUTH_EXCHANGE"], aio_pika.ExchangeType.TOPIC, durable=True
        )
        events = await channel.declare_queue("", exclusive=True)
        await events.bind(exchange, "user.created")

        async with aiohttp.ClientSession() as session:
            async with session.post(
                gateway + "/v2/requesttoken", json={"email": "root@e2e.local", "password": ADMIN_PASSWORD}
            ) as resp:
                assert resp.status == 200
                token = await resp.json()

        load = Load()
        workers = [asyncio.create_task(_create_users(gateway, token, load)) for _ in range(WORKERS)]
        # Let the load settle in, then SIGTERM with requests in flight.
        await asyncio.wait_for(load.warmed_up.wait(), 30)
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        load.stop.set()
        async with asyncio.timeout(LOAD_SECONDS):
            await asyncio.gather(*workers)
        outcomes = load.outcomes
        code = await asyncio.to_thread(proc.wait, SHUTDOWN_TIMEOUT * 2 + 20)
        stopped = time.monotonic() - signalled

        answered = [o for o in outcomes if o.status is not None]
        created = {o.user_id: o for o in answered if o.status == 201 and o.user_id}
        published = await _published_user_ids(events, set(created))
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
        stored = {
            str(r["id"]): r["email"]
            for r in await conn.fetch("SELECT id, email FROM auth.users WHERE email LIKE '%@load.test'")
        }
        unsent = await conn.fetchval("SELECT count(*) FROM auth.outbox WHERE sent_at IS NULL")
    finally:
        await conn.close()
    assert set(stored) == set(created), "a 201 write is missing, or a write got no 201"
    assert unsent == 0
    for o in lost:  # no answer: then no service may have seen it
        assert o.request_id not in logs, f"{o.request_id} was accepted but got no answer: {o.error}"
        assert o.email not in stored.values()
    missing = set(created) - published
    assert not missing, f"{len(missing)} of {len(created)} writes have no published event"
    print(  # the numbers, for the report (pytest -s)
        f"created {len(created)}, in flight at SIGTERM {len(in_flight)}, refused {len(refused)}, "
        f"unanswered but unseen {len(lost)}, all stopped in {stopped:.1f} s"
    )

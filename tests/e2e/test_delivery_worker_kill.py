"""The delivery worker as a real process (`python -m services.webhook_delivery`), killed with
SIGKILL in the middle of attempts, twice: every delivery still arrives (at least once), because
PostgreSQL holds the truth and a dead worker's leases expire into the sweeper's hands."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from services.webhook_delivery.app import MIGRATIONS, SCHEMA
from shared.config import Settings
from shared.service import prepare_database
from tests.conftest import AMQP_URL, delete_amqp_names
from tests.delivery_support import Publisher, connect, insert_subscription, wait_until
from tests.receiver import Answer, Receiver, start_receiver
from tests.worker_process import WorkerProcess

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]
EVENTS = 60
RECEIVERS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def worker_env(fresh_database_url: str) -> Iterator[dict[str, str]]:
    prefix = f"herald.test.{uuid.uuid4().hex[:8]}"
    port = _free_port()
    env = {
        **os.environ,
        "HERALD_DATABASE_URL": fresh_database_url,
        "HERALD_AMQP_URL": AMQP_URL,
        "HERALD_WEBHOOK_PORT": str(port),
        "HERALD_AUTH_URL": "http://127.0.0.1:9",  # never asked: nothing here needs a token
        "HERALD_AUTH_EXCHANGE": f"{prefix}.auth",
        "HERALD_DOMAIN_EXCHANGE": f"{prefix}.domain",
        "HERALD_QUEUE_PREFIX": prefix,
        "HERALD_WEBHOOK_ALLOW_PRIVATE": "true",
        "HERALD_WEBHOOK_RETRY_SCHEDULE": "0.3,0.5,1,1,1,1,1,1",
        "HERALD_WEBHOOK_RETRY_JITTER": "0",
        "HERALD_WEBHOOK_SWEEP_SECONDS": "0.2",
        "HERALD_WEBHOOK_TIMEOUT": "2",
        "HERALD_SHUTDOWN_TIMEOUT": "2",
        "HERALD_LOG_LEVEL": "WARNING",
    }
    yield env
    asyncio.run(delete_amqp_names(prefix))


@pytest.fixture
async def receivers() -> AsyncIterator[list[Receiver]]:
    # Slow enough that a kill always lands with attempts in flight; the first answers fail.
    started = [
        await start_receiver(Answer(500), Answer(503), default=Answer(200, delay=0.15))
        for _ in range(RECEIVERS)
    ]
    yield started
    for receiver in started:
        await receiver.stop()


async def test_sigkilled_worker_loses_no_delivery(
    worker_env: dict[str, str], receivers: list[Receiver], tmp_path: Path
) -> None:
    settings = Settings.from_env(worker_env)
    await prepare_database(settings, SCHEMA, MIGRATIONS)
    conn = await connect(settings)
    workers: list[WorkerProcess] = []
    log = (tmp_path / "worker.log").open("wb")
    try:
        subs = [await insert_subscription(conn, r.url, ["location.*"]) for r in receivers]
        workers.append(WorkerProcess(worker_env, log))
        await workers[-1].ready()
        started = time.monotonic()
        event_ids: list[str] = []
        async with Publisher(settings) as pub:
            for i in range(EVENTS // 2):
                event_ids.append((await pub.event("location.created", name=f"L{i}"))["id"])

            async def some_arrived() -> bool:
                return sum(len(r.requests) for r in receivers) >= 20

            await wait_until(some_arrived, 60, "the first deliveries")
            in_flight = sum(r.in_flight for r in receivers)
            workers[-1].kill()  # mid-attempts: no chance to record or hand back anything
            # Events keep coming while no worker runs: they wait in the durable queue.
            for i in range(EVENTS // 2, EVENTS):
                event_ids.append((await pub.event("location.updated", name=f"L{i}"))["id"])
        workers.append(WorkerProcess(worker_env, log))
        await workers[-1].ready()

        async def more_arrived() -> bool:
            return sum(len(r.requests) for r in receivers) >= 60

        await wait_until(more_arrived, 60, "deliveries after the restart")
        workers[-1].kill()
        workers.append(WorkerProcess(worker_env, log))
        await workers[-1].ready()

        async def all_succeeded() -> bool:
            done = await conn.fetchval(
                "SELECT count(*) FROM deliveries WHERE status = 'succeeded' AND subscription_id = ANY($1::uuid[])",
                [s["id"] for s in subs],
            )
            return int(done) == EVENTS * RECEIVERS

        await wait_until(all_succeeded, 120, "every delivery to succeed")
        elapsed = time.monotonic() - started
        for receiver in receivers:
            assert set(event_ids) <= set(receiver.ids()), "a delivery never arrived"
        total = sum(len(r.requests) for r in receivers)
        dupes = total - EVENTS * RECEIVERS - 2 * RECEIVERS  # minus the two scripted failures each
        print(
            f"\n{EVENTS * RECEIVERS} deliveries, 2 SIGKILLs ({in_flight} requests open at the first),"
            f" {total} requests in {elapsed:.1f} s, {dupes} sent again after a kill"
        )
        metrics = await workers[-1].metrics()
        assert "herald_webhook_attempts_total" in metrics and "herald_webhook_lane_depth" in metrics
        assert workers[-1].stop() == 0  # SIGTERM drains and exits cleanly
    finally:
        for worker in workers:
            worker.kill()
        log.close()
        await conn.close()
        print((tmp_path / "worker.log").read_text()[-3000:])

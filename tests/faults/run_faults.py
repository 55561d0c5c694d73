"""The fault suite: N location creates through the edge (100 per POST, one `location.created`
event each) flow resource outbox -> RabbitMQ -> fan-out -> delivery worker -> a local receiver,
for 5 subscriptions (one with a filter that lets half the events through), while the worker is SIGKILLed three times (and restarted), AMQP
connections are closed from the broker side (the worker's, the resource service's),
webhook_delivery's PostgreSQL backends are terminated, and the receiver answers 503 to every
other request for a while. Then every (event, subscription) pair must have been accepted by
the receiver at least once, except those the filter keeps out, of which none may arrive; a duplicate only with the same webhook-id and the same bytes;
every request signed. Counts printed; exit status 1 on any loss or mismatch.

    python tests/faults/run_faults.py [events, default FAULT_EVENTS or 10000]

FAULT_RATE (events created per second, default 100) paces the creates so that the faults land
while events still flow; FAULT_DEADLINE (seconds) bounds the whole run.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import orjson
from aiohttp import web

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.harness import RunningSuite, running_suite  # noqa: E402
from shared.webhooks import WebhookVerificationError, verify  # noqa: E402
from tests.amqp_cut import close_connections  # noqa: E402
from tests.worker_process import WorkerProcess  # noqa: E402

BATCH = 100  # creates per POST (the resource service's maximum)
TOPICS = (["*"], ["location.*"], ["location.created", "event.created"], ["location.created"], ["location.*"])
# The last subscription's filter: locations are made with capacities 0 to 99 (BATCH), so it lets
# half of them through; `passes` says the same, independently, for the expected pairs.
FILTERED = len(TOPICS) - 1
FILTER = {"type": "location.created", "data.capacity": {"gte": BATCH // 2}}


def expected_subs(capacity: int) -> tuple[int, ...]:
    """The subscriptions a location of this capacity is expected at."""
    passes = capacity >= BATCH // 2
    return tuple(i for i in range(len(TOPICS)) if passes or i != FILTERED)


# Short timings so that the run ends: retries within seconds, a dead worker's leases expire in
# webhook_timeout + 5 s, a held delivery is swept back onto a lane within half a second.
TIMINGS = {
    "HERALD_WEBHOOK_RETRY_SCHEDULE": "0.2,0.5,1,1,2,2,2,3,3,3,3,3,5,5,5,5,5,5,5,5",
    "HERALD_WEBHOOK_RETRY_JITTER": "0.2",
    "HERALD_WEBHOOK_SWEEP_SECONDS": "0.5",
    "HERALD_WEBHOOK_TIMEOUT": "3",
    "HERALD_WEBHOOK_BREAKER_SECONDS": "1",
    "HERALD_WEBHOOK_MAX_IN_FLIGHT": "32",
    "HERALD_SHUTDOWN_TIMEOUT": "2",
    "HERALD_WEBHOOK_ALLOW_PRIVATE": "true",
    "HERALD_LOG_LEVEL": "WARNING",
    "PYTHONUNBUFFERED": "1",  # a SIGKILLed worker's last log lines are what explain a failure
}


class DeadlineExceeded(Exception):
    pass


# -- the receiver ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    sub: int  # which subscription's URL it came to
    status: int  # what the receiver answered
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() on arrival (signatures are checked against it afterwards)


@dataclass
class FaultReceiver:
    """Records every request; while `failing`, answers 503 to every other one."""

    requests: list[Request] = field(default_factory=list)
    accepted: set[tuple[str, int]] = field(default_factory=set)  # (webhook-id, subscription)
    failing: bool = False
    failed: int = 0
    _toggle: int = 0
    runner: web.AppRunner | None = None
    base: str = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook/{sub}", self._handle)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        self.base = f"http://127.0.0.1:{self.runner.addresses[0][1]}/hook"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        sub = int(request.match_info["sub"])
        status = 200
        if self.failing:
            self._toggle += 1
            if self._toggle % 2:
                status = 503
                self.failed += 1
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower().startswith("webhook-")}
        self.requests.append(Request(sub, status, headers, body, time.time()))
        if status == 200:
            self.accepted.add((headers.get("webhook-id", ""), sub))
        return web.Response(status=status, text="ok" if status == 200 else "try later")

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


# -- the worker process ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worker_process(suite_env: dict[str, str], log: IO[bytes]) -> WorkerProcess:
    """`python -m services.webhook_delivery` with only the worker half (fan-out, lanes, sweeper)."""
    env = {
        **suite_env,
        **TIMINGS,
        "HERALD_WEBHOOK_API": "false",
        "HERALD_WEBHOOK_WORKER": "true",
        "HERALD_WEBHOOK_PORT": str(free_port()),
    }
    return WorkerProcess(env, log)


# -- the cuts -------------------------------------------------------------------------------


def amqp_local_ports(pid: int, amqp_port: int) -> set[int]:
    """The local ports of `pid`'s TCP connections to the broker (ss -p shows the owner)."""
    listed = subprocess.run(
        ["ss", "-Htnp", "state", "established", f"( dport = :{amqp_port} )"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    ports = set()
    for line in listed.stdout.splitlines():
        if f"pid={pid}," in line:
            local = line.split()[2]  # Recv-Q Send-Q Local Peer Process
            ports.add(int(local.rsplit(":", 1)[1]))
    return ports


async def terminate_backends(dsn: str, database: str) -> int:
    """pg_terminate_backend on this run's webhook_delivery connections (pool and index listener)."""
    conn = await asyncpg.connect(dsn)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = $1 AND application_name LIKE 'herald-webhook%' AND pid <> pg_backend_pid()",
                database,
            )
        )
    finally:
        await conn.close()


# -- the run --------------------------------------------------------------------------------


@dataclass
class Run:
    suite: RunningSuite
    receiver: FaultReceiver
    log: IO[bytes]
    events: int
    rate: float
    deadline: float  # time.monotonic() at which the run fails
    started: float = field(default_factory=time.monotonic)
    subs: list[dict[str, Any]] = field(default_factory=list)
    locations: dict[str, int] = field(default_factory=dict)  # id -> capacity
    workers: list[WorkerProcess] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    side_tasks: set[asyncio.Task[None]] = field(default_factory=set)
    fault_log: list[tuple[float, str]] = field(default_factory=list)  # (time.time(), fault), in order

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f} s] {text}", flush=True)

    @functools.cached_property
    def expected(self) -> int:
        return sum(len(expected_subs(n % BATCH)) for n in range(self.events))  # capacity = n % BATCH

    def progress(self) -> float:
        return len(self.receiver.accepted) / self.expected

    def left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded
        return left

    async def until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            self.left()
            await asyncio.sleep(0.05)

    # -- setting up

    async def subscribe(self, session: aiohttp.ClientSession) -> None:
        for i, topics in enumerate(TOPICS):
            body: dict[str, Any] = {
                "url": f"{self.receiver.base}/{i}",
                "topics": topics,
                "description": f"fault suite {i}",
            }
            if i == FILTERED:
                body["filter"] = FILTER
            async with session.post(self.suite.base + "/v2/subscription/list", json=body) as resp:
                if resp.status != 201:
                    raise RuntimeError(f"creating a subscription answered {resp.status}: {await resp.text()}")
                self.subs.append(await resp.json())

    async def start_worker(self) -> None:
        self.workers.append(worker_process(self.suite.env, self.log))
        await self.workers[-1].ready(min(60.0, self.left()))

    # -- the load

    async def create(self, session: aiohttp.ClientSession) -> None:
        """Location batches at `rate` events/s; the resource service's AMQP connection is cut
        once, a third of the way in."""
        batches = (self.events + BATCH - 1) // BATCH
        begun = time.monotonic()
        for b in range(batches):
            await asyncio.sleep(max(0.0, begun + b * BATCH / self.rate - time.monotonic()))
            self.left()
            size = min(BATCH, self.events - b * BATCH)
            items = [{"name": f"fault {b}-{i}", "capacity": i} for i in range(size)]
            async with session.post(self.suite.base + "/v2/location/list", json=items) as resp:
                if resp.status != 201:
                    raise RuntimeError(f"batch {b} answered {resp.status}: {(await resp.text())[:300]}")
                self.locations.update((row["id"], row["capacity"]) for row in await resp.json())
            if b == batches // 3:
                self.side_tasks.add(asyncio.create_task(self.fault("resource AMQP cut", self.cut_resource)))
        self.say(f"all {len(self.locations)} locations created in {time.monotonic() - begun:.1f} s")

    # -- the faults

    async def fault(self, name: str, action: Callable[[], Awaitable[str]]) -> None:
        try:
            begun = time.time()
            detail = await action()
            self.faults[name] += 1
            self.fault_log.append((begun, f"{name} #{self.faults[name]}"))
            self.say(f"{name}: {detail} (progress {self.progress():.0%}, {len(self.locations)} created)")
        except Exception as exc:  # a fault that could not be done fails the run
            self.errors.append(f"{name} failed: {type(exc).__name__}: {exc}")
            self.say(self.errors[-1])

    async def kill_worker(self) -> str:
        victim = self.workers[-1]
        await asyncio.to_thread(victim.kill)
        await self.start_worker()
        return f"SIGKILLed pid {victim.process.pid}, pid {self.workers[-1].process.pid} ready"

    async def cut_worker(self) -> str:
        pid = self.workers[-1].process.pid
        amqp_port = urlsplit(self.suite.env.get("HERALD_AMQP_URL", "amqp://127.0.0.1:5672/")).port or 5672
        ports = await asyncio.to_thread(amqp_local_ports, pid, amqp_port)
        if not ports:
            raise RuntimeError(f"no AMQP connection of pid {pid} found with ss")
        name = f"{self.suite.env['HERALD_QUEUE_PREFIX']}.webhook_delivery"
        closed = await asyncio.to_thread(close_connections, name, ports)
        if not closed:
            raise RuntimeError("rabbitmqctl closed none of the worker's connections")
        return f"closed {closed} connection(s) of pid {pid}"

    async def cut_resource(self) -> str:
        closed = await asyncio.to_thread(
            close_connections, f"{self.suite.env['HERALD_QUEUE_PREFIX']}.resource"
        )
        if not closed:
            raise RuntimeError("rabbitmqctl closed none of the resource service's connections")
        return f"closed {closed} connection(s)"

    async def terminate(self) -> str:
        dsn = self.suite.env["HERALD_DATABASE_URL"]
        terminated = await terminate_backends(dsn, dsn.rsplit("/", 1)[1])
        if not terminated:
            raise RuntimeError("no webhook_delivery backend to terminate")
        return f"terminated {terminated} backend(s)"

    async def flaky(self, on: bool) -> str:
        self.receiver.failing = on
        return (
            "the receiver answers 503 to every other request"
            if on
            else (f"the receiver answers 200 again ({self.receiver.failed} answered 503)")
        )

    async def chaos(self) -> None:
        """Each fault once the receiver accepted that share of the expected pairs."""
        plan: list[tuple[float, str, Callable[[], Awaitable[str]]]] = [
            (0.04, "503 for half the requests", lambda: self.flaky(True)),
            (0.10, "worker SIGKILL", self.kill_worker),
            (0.20, "worker AMQP cut", self.cut_worker),
            (0.30, "PostgreSQL backends terminated", self.terminate),
            (0.40, "503 window over", lambda: self.flaky(False)),
            (0.45, "worker SIGKILL", self.kill_worker),
            (0.70, "worker SIGKILL", self.kill_worker),
        ]
        for share, name, action in plan:
            await self.until(lambda share=share: self.progress() >= share)  # type: ignore[misc]
            await self.fault(name, action)

    async def report_progress(self) -> None:
        while True:
            await asyncio.sleep(5)
            self.say(
                f"{len(self.locations)} created, {len(self.receiver.accepted)}/{self.expected} pairs"
                f" accepted, {len(self.receiver.requests)} requests"
            )


# -- checking -------------------------------------------------------------------------------


@dataclass
class Verdict:
    expected: int = 0
    received: int = 0  # pairs that reached the receiver at least once
    accepted: int = 0  # pairs the receiver answered 200 at least once
    lost: int = 0
    duplicates: int = 0  # 200-answered requests beyond the first of each pair
    requests: int = 0
    answered_503: int = 0
    bad_signatures: int = 0
    mismatches: list[str] = field(default_factory=list)
    duplicates_after: Counter[str] = field(default_factory=Counter)  # by the fault last begun before


def check(run: Run) -> Verdict:
    v = Verdict(
        expected=sum(len(expected_subs(c)) for c in run.locations.values()),
        requests=len(run.receiver.requests),
    )
    secrets = [sub["secret"] for sub in run.subs]
    body_of: dict[tuple[str, int], bytes] = {}
    event_of: dict[str, str] = {}  # location id -> its location.created event id
    received: set[tuple[str, int]] = set()
    accepted: set[tuple[str, int]] = set()
    ok_requests = 0

    def mismatch(text: str) -> None:
        if len(v.mismatches) < 20:
            v.mismatches.append(text)
        elif len(v.mismatches) == 20:
            v.mismatches.append("... (more)")

    for r in run.receiver.requests:
        hook_id = r.headers.get("webhook-id", "")
        try:
            verify(secrets[r.sub], r.headers, r.body, now=r.at)
        except WebhookVerificationError as exc:
            v.bad_signatures += 1
            mismatch(f"signature of {hook_id} to subscription {r.sub}: {exc}")
        if body_of.setdefault((hook_id, r.sub), r.body) != r.body:
            mismatch(f"webhook-id {hook_id} came to subscription {r.sub} with two different bodies")
        body = orjson.loads(r.body)
        if body.get("id") != hook_id:
            mismatch(f"webhook-id {hook_id} but the body's id is {body.get('id')}")
        location = (body.get("data") or {}).get("id")
        if body.get("type") != "location.created" or location not in run.locations:
            mismatch(f"unexpected {body.get('type')} {location} to subscription {r.sub}")
            continue
        if r.sub not in expected_subs(run.locations[location]):
            mismatch(f"location {location} came to subscription {r.sub}, whose filter keeps it out")
            continue
        if event_of.setdefault(location, hook_id) != hook_id:
            mismatch(f"location {location} came as two events: {event_of[location]} and {hook_id}")
        received.add((location, r.sub))
        if r.status == 200:
            if (location, r.sub) in accepted:
                before = [name for at, name in run.fault_log if at <= r.at]
                v.duplicates_after[before[-1] if before else "no fault"] += 1
            accepted.add((location, r.sub))
            ok_requests += 1
        else:
            v.answered_503 += 1
    v.received, v.accepted = len(received), len(accepted)
    v.lost = v.expected - v.accepted
    v.duplicates = ok_requests - v.accepted
    return v


async def delivery_statuses(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT status, count(*) AS n FROM webhook_delivery.deliveries GROUP BY status"
        )
        return {r["status"]: r["n"] for r in rows}
    finally:
        await conn.close()


# -- main -----------------------------------------------------------------------------------


async def run_faults(events: int, rate: float, seconds: float) -> int:
    started = time.monotonic()
    receiver = FaultReceiver()
    await receiver.start()
    logdir = Path(tempfile.mkdtemp(prefix="herald-faults-"))
    log = (logdir / "services.log").open("wb")
    run: Run | None = None
    verdict: Verdict | None = None
    statuses: dict[str, int] = {}
    timed_out = False
    try:
        async with running_suite(log, **TIMINGS, HERALD_WEBHOOK_WORKER="false") as suite:
            run = Run(suite, receiver, log, events, rate, started + seconds, started)
            run.say(
                f"suite up (AMQP prefix {suite.env['HERALD_QUEUE_PREFIX']}); {events} events at {rate:g}/s"
                f" to {len(TOPICS)} subscriptions"
            )
            headers = {"Authorization": f"Bearer {suite.token}"}
            timeout = aiohttp.ClientTimeout(total=60)
            async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
                await run.subscribe(session)
                await run.start_worker()  # declares the fan-out queue before the first event
                reporter = asyncio.create_task(run.report_progress())
                try:
                    async with asyncio.TaskGroup() as tasks:
                        tasks.create_task(run.create(session))
                        tasks.create_task(run.chaos())
                    await asyncio.gather(*run.side_tasks)
                    await run.until(lambda: len(receiver.accepted) >= run.expected)
                    run.say("every pair accepted")
                    # The worker records successes just after the answer: let it catch up.
                    for _ in range(100):
                        statuses = await delivery_statuses(suite.env["HERALD_DATABASE_URL"])
                        if not statuses.get("pending"):
                            break
                        await asyncio.sleep(0.1)
                except* DeadlineExceeded:
                    timed_out = True
                    run.say(f"DEADLINE: not done within {seconds:g} s")
                    statuses = await delivery_statuses(suite.env["HERALD_DATABASE_URL"])
                except* Exception as group:
                    run.errors.extend(f"{type(e).__name__}: {e}" for e in group.exceptions)
                    run.say(f"ERROR: {run.errors[-1]}")
                finally:
                    reporter.cancel()
                    stopped = [await asyncio.to_thread(w.stop) for w in run.workers[-1:]]
                    if stopped and stopped[0] != 0:
                        run.errors.append(f"the last worker exited with {stopped[0]} on SIGTERM")
                    for worker in run.workers:
                        await asyncio.to_thread(worker.kill)
            verdict = check(run)
    finally:
        await receiver.stop()
        log.close()
    assert run is not None and verdict is not None
    wall = time.monotonic() - started
    required = {
        "worker SIGKILL": 3,
        "worker AMQP cut": 1,
        "resource AMQP cut": 1,
        "PostgreSQL backends terminated": 1,
    }
    missing = [f"{name}: {run.faults[name]} of {n}" for name, n in required.items() if run.faults[name] < n]
    print(
        "\n".join(
            [
                "",
                "fault suite results",
                f"  events created:                 {len(run.locations)} (of {events})",
                f"  expected (event, subscription): {verdict.expected}",
                f"  received at least once:         {verdict.received}",
                f"  accepted (200) at least once:   {verdict.accepted}",
                f"  lost:                           {verdict.lost}",
                f"  duplicates (same webhook-id):   {verdict.duplicates}"
                + (f" (after: {dict(verdict.duplicates_after)})" if verdict.duplicates else ""),
                f"  requests / answered 503:        {verdict.requests} / {verdict.answered_503}",
                f"  signatures verified:            {verdict.requests - verdict.bad_signatures} of {verdict.requests}",
                f"  deliveries in PostgreSQL:       {dict(sorted(statuses.items()))}",
                "  faults done:                    "
                + ", ".join(f"{name} x{n}" for name, n in sorted(run.faults.items())),
                f"  wall time:                      {wall:.1f} s",
            ]
        )
    )
    problems = [
        *(["deadline exceeded"] if timed_out else []),
        *([f"{verdict.lost} pairs lost"] if verdict.lost else []),
        *([f"{verdict.bad_signatures} bad signatures"] if verdict.bad_signatures else []),
        *verdict.mismatches,
        *([f"faults not done: {', '.join(missing)}"] if missing else []),
        *([f"{statuses['failed']} deliveries failed"] if statuses.get("failed") else []),
        *([f"only {len(run.locations)} of {events} events created"] if len(run.locations) != events else []),
        *run.errors,
    ]
    if problems:
        print("FAILED:\n  " + "\n  ".join(problems))
        text = (logdir / "services.log").read_text(errors="replace")
        print(f"last service log lines ({logdir / 'services.log'}):\n{text[-4000:]}")
        return 1
    print("passed: 0 lost")
    shutil.rmtree(logdir, ignore_errors=True)  # kept only when the run failed
    return 0


def main() -> int:
    events = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("FAULT_EVENTS", "10000"))
    if events < BATCH:
        raise SystemExit(f"use at least {BATCH} events")
    rate = float(os.environ.get("FAULT_RATE", "100"))
    seconds = float(os.environ.get("FAULT_DEADLINE", str(max(240, 120 + events * 0.05))))
    return asyncio.run(run_faults(events, rate, seconds))


if __name__ == "__main__":
    sys.exit(main())

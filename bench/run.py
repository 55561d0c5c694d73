"""`make bench`: every figure of this round's targets in one run, against its target.

1. The baseline: nginx configured as the edge is, in front of a hello-world aiohttp app
   (bench/baseline.py); the former one, an aiohttp proxy in front of the same app, for reference.
2. The suite as `make run` starts it (limits off), 1,000 events (bench/population.py), with the
   webhook worker in a process of its own and a fast receiver in another (bench/receiver.py):
   - authenticated GET /v2/event/{id} through the edge (wrk, the baseline's settings);
   - GET /v2/event/list?limit=50 as a member (the visibility rule applies; same settings);
   - POST /v2/event/list through the edge, outbox included (same settings);
   - event -> first webhook attempt at a fixed rate of creates x 5 subscriptions: from the
     moment the create request was sent to the receiver's arrival of the first attempt;
   - deliveries/s of one worker process: events created while no worker runs, then one worker
     process started, timed from the receiver's first to its last arrival (the process also
     does the fan-out of those events, as every worker process does);
   - retry lateness: a worker with a retry schedule of 1 s (and no circuit breaking), creates
     at the same fixed rate, the receiver failing the first attempt of one subscription's
     deliveries (the target's case), then of all five (twice the attempts; no target); each
     retry's start minus the time it was due, as PostgreSQL stored them (`attempted_at - due_at`);
   - peak RSS of each process (nginx's master and workers included).
3. A second suite with 1,000,000 events COPY-seeded by bench/seed_events.py: list-50 again
   (skipped, and said so, without that module).
Writes bench/results/<timestamp>.json and prints Markdown tables. Every load loop is bounded
in count and time.

    python bench/run.py     (BENCH_SECONDS=10 per wrk run, BENCH_RATE_SECONDS=5,
                             BENCH_PRELOAD_EVENTS=1000, BENCH_LIST_EVENTS=1000,
                             BENCH_BIG_LIST_EVENTS=1000000)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import asyncpg
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.baseline import nginx_two_hops, two_hops
from bench.harness import (
    ROOT,
    RunningSuite,
    cpu_seconds,
    cpu_used,
    free_ports,
    machine_cpu_seconds,
    machine_idle,
    peak_rss_of,
    running_suite,
    spawn,
    wrk,
)
from bench.population import add_user, populate, seeder

SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
RATE = 200  # creates a second in the latency run
RATE_SECONDS = int(os.environ.get("BENCH_RATE_SECONDS", "5"))
LOW_RATE = 20  # creates a second in a second latency run: the pipeline's own latency, unqueued
PRELOAD_EVENTS = int(os.environ.get("BENCH_PRELOAD_EVENTS", "1000"))
LIST_EVENTS = int(os.environ.get("BENCH_LIST_EVENTS", "1000"))
BIG_LIST_EVENTS = int(os.environ.get("BENCH_BIG_LIST_EVENTS", "1000000"))
SUBSCRIPTIONS = 5
CONCURRENCY = 64  # in flight from the bench's own loops (wrk's -c64 too)
SHARED_SERVERS = ("postgres", "beam.smp")  # PostgreSQL's and RabbitMQ's process names
LIST_50 = "/v2/event/list?limit=50"
HTTP_RUNS = ("baseline", "baseline_aiohttp_proxy", "get_event", "list_50", "list_50_big", "create_event")

EVENT = {
    "title": "Benchmark event",
    "description": "Created by bench/run.py",
    "startsAt": "2027-06-01T18:00:00Z",
    "endsAt": "2027-06-01T20:00:00Z",
    "capacity": 50,
    "tags": ["bench"],
}

TARGETS = {
    "get_ratio": 0.8,
    "get_p99_ms": 50.0,
    "list_ratio": 0.3,
    "list_p99_ms": 100.0,
    "list_big_of_small": 0.75,  # list-50 at a million events within 25 % of list-50 at a thousand
    "creates_per_s": 1000.0,
    "first_attempt_p95_ms": 50.0,
    "deliveries_per_s": 1500.0,
    "retry_late_p95_ms": 1000.0,
    "rss_mib": 100.0,
}


# -- processes -------------------------------------------------------------------------------


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_worker(suite: RunningSuite, **settings: str) -> tuple[subprocess.Popen[bytes], str]:
    """One webhook delivery process with the worker (fan-out included) and no API."""
    (port,) = free_ports(1)
    env = {
        **suite.env,
        **settings,
        "HERALD_WEBHOOK_PORT": str(port),
        "HERALD_WEBHOOK_API": "false",
        "HERALD_WEBHOOK_WORKER": "true",
    }
    return spawn("services.webhook_delivery", env), f"http://127.0.0.1:{port}"


async def wait_ready(url: str, seconds: float = 40) -> None:
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} not ready within {seconds} s")


async def wait_for(check: Callable[[], Awaitable[bool]], seconds: float, what: str) -> float:
    """Poll until `check()`; returns the seconds it took (raises after `seconds`)."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > seconds:
            raise RuntimeError(f"timed out after {seconds} s waiting for {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


# -- the suite's state -----------------------------------------------------------------------


async def unsent_outbox_rows(suite: RunningSuite) -> int:
    conn = await asyncpg.connect(suite.env["HERALD_DATABASE_URL"])
    try:
        return int(await conn.fetchval("SELECT count(*) FROM resource.outbox WHERE sent_at IS NULL"))
    finally:
        await conn.close()


async def delivery_counts(suite: RunningSuite) -> dict[str, int]:
    conn = await asyncpg.connect(suite.env["HERALD_DATABASE_URL"])
    try:
        rows = await conn.fetch("SELECT status, count(*) AS n FROM webhook_delivery.deliveries GROUP BY 1")
        return {r["status"]: int(r["n"]) for r in rows}
    finally:
        await conn.close()


async def fanout_depth(suite: RunningSuite) -> int:
    connection = await aio_pika.connect(
        suite.env.get("HERALD_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    )
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(
            f"{suite.env['HERALD_QUEUE_PREFIX']}.webhook_delivery.fanout", passive=True
        )
        return int(queue.declaration_result.message_count or 0)


async def settled(suite: RunningSuite, seconds: float = 90) -> float:
    """Every created event published by the relay and taken by the fan-out."""

    async def done() -> bool:
        return await unsent_outbox_rows(suite) == 0 and await fanout_depth(suite) == 0

    return await wait_for(done, seconds, "the outbox and the fan-out queue to drain")


# -- load loops ------------------------------------------------------------------------------


async def create_event(session: aiohttp.ClientSession, base: str) -> str:
    async with session.post(f"{base}/v2/event/list", json=EVENT) as resp:
        if resp.status != 201:
            raise RuntimeError(f"create answered {resp.status}: {await resp.text()}")
        return str((await resp.json())["id"])


async def create_many(session: aiohttp.ClientSession, base: str, count: int) -> int:
    """`count` creates, CONCURRENCY at a time; returns how many were created."""
    queue = iter(range(count))
    created = 0

    async def lane() -> None:
        nonlocal created
        for _ in queue:
            with contextlib.suppress(RuntimeError, aiohttp.ClientError):
                await create_event(session, base)
                created += 1

    await asyncio.gather(*(lane() for _ in range(CONCURRENCY)))
    return created


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)] if ordered else float("nan")


async def first_attempt_latency(
    session: aiohttp.ClientSession, base: str, receiver: str, rate: int, seconds: int
) -> dict[str, Any]:
    """Creates at a fixed rate (sent on schedule, not after the previous answer), then each
    (subscription, event)'s first arrival at the receiver minus that event's send time."""
    sent_at: dict[str, float] = {}
    answered_in: list[float] = []  # each create's own response time: the first leg of the path
    failed = 0
    count = rate * seconds

    async def one() -> None:
        nonlocal failed
        stamp = time.monotonic()
        try:
            sent_at[await create_event(session, base)] = stamp
            answered_in.append((time.monotonic() - stamp) * 1000)
        except (RuntimeError, aiohttp.ClientError):
            failed += 1

    tasks: list[asyncio.Task[None]] = []
    started = time.monotonic()
    for i in range(count):
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    sending = time.monotonic() - started
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    expected = len(sent_at) * SUBSCRIPTIONS

    async def arrived() -> bool:
        return (await get_json(session, receiver + "/stats"))["unique"] >= expected

    with contextlib.suppress(RuntimeError):
        await wait_for(arrived, 60, "the first attempts")
    arrivals = await get_json(session, receiver + "/arrivals")
    latencies = [(at - sent_at[data_id]) * 1000 for _n, data_id, at in arrivals if data_id in sent_at]
    return {
        "events": len(sent_at),
        "failed_creates": failed,
        "achieved_rate": round(count / sending),
        "attempts_expected": expected,
        "attempts_measured": len(latencies),
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "max_ms": round(max(latencies, default=float("nan")), 1),
        "create_answered_p50_ms": round(percentile(answered_in, 0.50), 1),
        "create_answered_p95_ms": round(percentile(answered_in, 0.95), 1),
    }


async def get_json(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as resp:
        return orjson.loads(await resp.read())


async def worker_rate(
    suite: RunningSuite, session: aiohttp.ClientSession, receiver: str, events: int
) -> tuple[dict[str, Any], float]:
    """Events created and fanned-out messages queued while no worker runs; then one worker
    process drains them all. Returns its figures and the process's peak RSS."""
    created = await create_many(session, suite.base, events)
    queued_in = await wait_for(lambda: _outbox_empty(suite), 90, "the relay to publish the pre-loaded events")
    depth = await fanout_depth(suite)
    await session.post(receiver + "/reset")
    before = await delivery_counts(suite)
    expected = created * SUBSCRIPTIONS
    proc, url = start_worker(suite)
    spawned = time.monotonic()
    try:
        await wait_ready(url + "/readyz")
        cpu_at_ready = cpu_seconds(proc.pid)
        shared_at_ready = {name: machine_cpu_seconds(name) for name in SHARED_SERVERS}
        unique_at_ready = (await get_json(session, receiver + "/stats"))["unique"]

        async def drained() -> bool:
            return (await get_json(session, receiver + "/stats"))["unique"] >= expected

        with contextlib.suppress(RuntimeError):
            await wait_for(drained, 120, "one worker to deliver the pre-loaded events")
        stats = await get_json(session, receiver + "/stats")
        rss = peak_rss_of(proc.pid)
        cpu = cpu_seconds(proc.pid) - cpu_at_ready
        shared = {name: cpu_used(shared_at_ready[name], machine_cpu_seconds(name)) for name in SHARED_SERVERS}
    finally:
        stop(proc)
    after = await delivery_counts(suite)
    span = (stats["last_at"] or spawned) - (stats["first_at"] or spawned)
    return {
        "events": created,
        "publish_seconds": round(queued_in, 2),
        "fanout_queue_depth": depth,
        "deliveries_expected": expected,
        "deliveries_arrived": stats["unique"],
        "requests": stats["requests"],
        "succeeded_in_db": after.get("succeeded", 0) - before.get("succeeded", 0),
        "seconds_first_to_last": round(span, 2),
        "seconds_from_process_start": round((stats["last_at"] or spawned) - spawned, 2),
        "deliveries_per_s": round(stats["unique"] / span) if span > 0 else 0,
        # The worker's own CPU per delivery (fan-out included), from its readiness to the last.
        "worker_cpu_ms_per_delivery": round(cpu * 1000 / max(1, stats["unique"] - unique_at_ready), 3),
        **{
            f"{name}_cpu_ms_per_delivery (machine-wide)": round(
                seconds * 1000 / max(1, stats["unique"] - unique_at_ready), 3
            )
            for name, seconds in shared.items()
        },
    }, rss


async def retry_lateness(
    suite: RunningSuite,
    session: aiohttp.ClientSession,
    receiver: str,
    rate: int,
    seconds: int,
    failing_hooks: str | None = None,
) -> dict[str, Any]:
    """The deliveries of `failing_hooks` (a comma list of subscription numbers; None: every
    subscription's) fail their first attempt and are due again 1 s later: how late each retry
    started (attempted_at - due_at, both as stored), at `rate` creates a second."""
    conn = await asyncpg.connect(suite.env["HERALD_DATABASE_URL"])
    try:
        # Every first attempt fails: the circuit breakers would hold the subscriptions (and
        # measure themselves instead); they stay closed here.
        proc, url = start_worker(
            suite, HERALD_WEBHOOK_RETRY_SCHEDULE="1", HERALD_WEBHOOK_BREAKER_FAILURES="1000000000"
        )
        try:
            await wait_ready(url + "/readyz")
            # Warmed up as the first-attempt figure's worker is (by the low rate first, nothing
            # failing); only what comes after counts.
            await first_attempt_latency(session, suite.base, receiver, LOW_RATE, seconds)
            await wait_for(lambda: _none_pending(suite), 120, "the warm-up's deliveries")
            since = await conn.fetchval("SELECT coalesce(max(id), 0) FROM webhook_delivery.delivery_attempts")
            hooks = f"&hooks={failing_hooks}" if failing_hooks else ""
            await session.post(receiver + "/reset?fail_first=1" + hooks)
            load = await first_attempt_latency(session, suite.base, receiver, rate, seconds)
            with contextlib.suppress(RuntimeError):
                await wait_for(lambda: _none_pending(suite), 120, "the retries")
        finally:
            stop(proc)
            await session.post(receiver + "/reset")
        rows = await conn.fetch(
            "SELECT extract(epoch FROM a.attempted_at - a.due_at)::float8 * 1000 AS late,"
            " a.status_code, EXISTS (SELECT 1 FROM webhook_delivery.delivery_attempts b"
            "  WHERE b.delivery_id = a.delivery_id AND b.id < a.id) AS retry"
            " FROM webhook_delivery.delivery_attempts a WHERE a.id > $1 AND a.due_at IS NOT NULL",
            since,
        )
    finally:
        await conn.close()
    late = [float(r["late"]) for r in rows if r["retry"]]
    # First attempts are due when fanned out: how far behind the worker was as a whole.
    first_late = [float(r["late"]) for r in rows if not r["retry"]]
    return {
        "events": load["events"],
        "achieved_rate": load["achieved_rate"],
        "failing_subscriptions": len(failing_hooks.split(",")) if failing_hooks else SUBSCRIPTIONS,
        "retries_expected": load["events"]
        * (len(failing_hooks.split(",")) if failing_hooks else SUBSCRIPTIONS),
        "retries_measured": len(late),
        "retries_succeeded": sum(1 for r in rows if r["retry"] and r["status_code"] == 200),
        "first_attempt_start_p95_ms": round(percentile(first_late, 0.95), 1),
        "p50_ms": round(percentile(late, 0.50), 1),
        "p95_ms": round(percentile(late, 0.95), 1),
        "max_ms": round(max(late, default=float("nan")), 1),
    }


async def _outbox_empty(suite: RunningSuite) -> bool:
    return await unsent_outbox_rows(suite) == 0


async def _none_pending(suite: RunningSuite) -> bool:
    return await unsent_outbox_rows(suite) == 0 and not (await delivery_counts(suite)).get("pending")


# -- the run ---------------------------------------------------------------------------------


def wrk_with_cpu(pids: dict[str, int], url: str, token: str | None, **options: Any) -> dict[str, Any]:
    """wrk's figures, and each process's CPU milliseconds per answered request: what the
    machine's other load cannot change (it only takes the CPU away)."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    shared_before = {name: machine_cpu_seconds(name) for name in SHARED_SERVERS}
    idle_before, total_before = machine_idle()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures: dict[str, Any] = wrk(url, token, SECONDS, **options)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk, the one child that ended
    idle_after, total_after = machine_idle()
    # Near 0: the machine's CPUs were the limit; well above: something waited instead.
    figures["machine_idle_pct"] = round(
        100 * (idle_after - idle_before) / max(1, total_after - total_before), 1
    )
    done = max(1, figures["req_per_s"] * SECONDS)
    figures["cpu_ms_per_request"] = {}
    for name, pid in pids.items():
        try:
            figures["cpu_ms_per_request"][name] = round((cpu_seconds(pid) - before[name]) * 1000 / done, 3)
        except OSError:  # it died meanwhile (the supervisor starts another): its time is lost
            figures["cpu_ms_per_request"][name] = "exited"
    wrk_cpu = children.ru_utime + children.ru_stime - children_before.ru_utime - children_before.ru_stime
    figures["cpu_ms_per_request"]["wrk"] = round(wrk_cpu * 1000 / done, 3)
    # Machine-wide: includes whatever else used PostgreSQL and RabbitMQ meanwhile.
    figures["cpu_ms_per_request"].update(
        {
            f"{name} (machine-wide)": round(
                cpu_used(shared_before[name], machine_cpu_seconds(name)) * 1000 / done, 3
            )
            for name in SHARED_SERVERS
        }
    )
    return figures


async def page_size(base: str, path: str, token: str) -> int:
    """How many items one answer of `path` holds (what the list's figures are of)."""
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        items = await get_json(session, base + path)
    return len(items["items"] if isinstance(items, dict) else items)


async def first_event_id(suite: RunningSuite) -> str:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {suite.token}"}) as session:
        items = await get_json(session, f"{suite.base}/v2/event/list?limit=1")
    return str((items["items"] if isinstance(items, dict) else items)[0]["id"])


async def list_50(suite: RunningSuite, events: int, pids: dict[str, int]) -> dict[str, Any]:
    """`events` events, then GET list-50 as a member under wrk."""
    started = time.monotonic()
    made = await populate(suite, events, EVENT)
    populated_in = time.monotonic() - started
    await settled(suite, 300)  # what populating published is out of the way
    member = await add_user(suite, "member")
    figures = wrk_with_cpu(pids, suite.base + LIST_50, member)
    figures["events"] = events
    figures["populated_by"] = made
    figures["populate_seconds"] = round(populated_in, 1)
    figures["items_per_page"] = await page_size(suite.base, LIST_50, member)
    return figures


async def measure() -> dict[str, Any]:
    results: dict[str, Any] = {}
    hello_port, edge_port = free_ports(2)
    with nginx_two_hops(hello_port, edge_port) as (url, pids):
        results["baseline"] = wrk_with_cpu(pids, url, None)
    hello_port, proxy_port = free_ports(2)
    with two_hops(hello_port, proxy_port) as (url, proxies):
        pids = {"hello": proxies[0].pid, "proxy": proxies[1].pid}
        results["baseline_aiohttp_proxy"] = wrk_with_cpu(pids, url, None)
    (receiver_port,) = free_ports(1)
    receiver = f"http://127.0.0.1:{receiver_port}"
    env = {"HERALD_WEBHOOK_WORKER": "false", "HERALD_WEBHOOK_ALLOW_PRIVATE": "true"}
    with process(["bench/receiver.py", str(receiver_port)]) as receiver_proc:
        async with running_suite(None, **env) as suite:
            await wait_ready(receiver + "/stats")
            worker, worker_url = start_worker(suite)
            try:
                await wait_ready(worker_url + "/readyz")
                pids = {**suite.pids(), "webhook_worker": worker.pid}
                results["list_50"] = await list_50(suite, LIST_EVENTS, pids)
                one = f"{suite.base}/v2/event/{await first_event_id(suite)}"
                results["get_event"] = wrk_with_cpu(pids, one, suite.token)
                headers = {"Authorization": f"Bearer {suite.token}"}
                connector = aiohttp.TCPConnector(limit=CONCURRENCY)
                async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
                    many = f"{suite.base}/v2/event/list"
                    results["create_event"] = wrk_with_cpu(pids, many, suite.token, body=orjson.dumps(EVENT))
                    results["create_event"]["settle_seconds"] = round(await settled(suite), 2)
                    for n in range(SUBSCRIPTIONS):
                        sub = {"url": f"{receiver}/hook/{n}", "topics": ["event.created"]}
                        async with session.post(f"{suite.base}/v2/subscription/list", json=sub) as resp:
                            if resp.status != 201:
                                raise RuntimeError(f"subscription: {resp.status} {await resp.text()}")
                    # Warm-up (connections to the receiver, the index): not measured.
                    await first_attempt_latency(session, suite.base, receiver, 50, 1)
                    await session.post(receiver + "/reset")
                    results["first_attempt_low_rate"] = await first_attempt_latency(
                        session, suite.base, receiver, LOW_RATE, RATE_SECONDS
                    )
                    await session.post(receiver + "/reset")
                    results["first_attempt"] = await first_attempt_latency(
                        session, suite.base, receiver, RATE, RATE_SECONDS
                    )
                    # What the rate left waiting goes out before the worker stops.
                    await wait_for(lambda: _none_pending(suite), 120, "the pending deliveries")
                    rss = {"webhook_worker": peak_rss_of(worker.pid)}
                    stop(worker)
                    results["worker"], rss["webhook_worker_drain"] = await worker_rate(
                        suite, session, receiver, PRELOAD_EVENTS
                    )
                    # The target's case: 200 events/s flowing to five receivers, one of them
                    # failing first attempts. Then every receiver failing (twice the attempts:
                    # what a worker near its capacity does to retries; no target).
                    results["retry_lateness"] = await retry_lateness(
                        suite, session, receiver, RATE, RATE_SECONDS, failing_hooks="0"
                    )
                    results["retry_lateness_all_failing"] = await retry_lateness(
                        suite, session, receiver, RATE, RATE_SECONDS
                    )
                rss.update(suite.peak_rss_mib())
                rss["bench_receiver"] = peak_rss_of(receiver_proc.pid)
                results["peak_rss_mib"] = rss
            finally:
                stop(worker)
    if seeder() is None:
        results["list_50_big"] = {
            "skipped": "bench/seed_events.py is missing: nothing can seed a million events"
        }
    else:
        # A suite of its own: the first one's creates would otherwise sit in the table too.
        async with running_suite(None) as suite:
            print(f"seeding {BIG_LIST_EVENTS:,} events for the last list-50 run ...", file=sys.stderr)
            results["list_50_big"] = await list_50(suite, BIG_LIST_EVENTS, suite.pids())
            results["peak_rss_mib_big_list_suite"] = suite.peak_rss_mib()
    return results


def verdicts(r: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(figure, measured, target, ratio to the baseline, met) rows of the table; `met` is
    "yes", "**no**", "skipped" or "-" (no target)."""
    base, get, create, small = r["baseline"], r["get_event"], r["create_event"], r["list_50"]
    big = r["list_50_big"]
    first, low, worker = r["first_attempt"], r["first_attempt_low_rate"], r["worker"]
    t = TARGETS

    def yes(ok: bool) -> str:
        return "yes" if ok else "**no**"

    def http(x: dict[str, Any], unit: str) -> str:
        return (
            f"{x['req_per_s']:,} {unit}, p50 {x['p50_ms']} ms, p99 {x['p99_ms']} ms, non-2xx {x['non_2xx']}"
        )

    def ratio(x: dict[str, Any]) -> float:
        return float(x["req_per_s"]) / base["req_per_s"]

    def p95_met(x: dict[str, Any], target: str, what: str) -> str:
        """p95 within the target, every one of `what` measured."""
        return yes(x["p95_ms"] <= t[target] and x[f"{what}_measured"] == x[f"{what}_expected"])

    rows = [
        ("baseline: nginx -> hello (two hops)", http(base, "req/s"), "-", "1.00", "-"),
    ]
    if "baseline_aiohttp_proxy" in r:
        old = r["baseline_aiohttp_proxy"]
        rows.append(
            ("for reference: aiohttp proxy -> hello", http(old, "req/s"), "-", f"{ratio(old):.2f}", "-")
        )
    rows += [
        (
            "GET /v2/event/{id}, authenticated",
            http(get, "req/s"),
            f">= {t['get_ratio']} x baseline, p99 <= {t['get_p99_ms']:g} ms",
            f"{ratio(get):.2f}",
            yes(ratio(get) >= t["get_ratio"] and get["p99_ms"] <= t["get_p99_ms"] and not get["non_2xx"]),
        ),
        (
            f"GET {LIST_50} as a member, {small['events']:,} events ({small['items_per_page']} a page)",
            http(small, "req/s"),
            f">= {t['list_ratio']} x baseline, p99 <= {t['list_p99_ms']:g} ms",
            f"{ratio(small):.2f}",
            yes(
                ratio(small) >= t["list_ratio"]
                and small["p99_ms"] <= t["list_p99_ms"]
                and small["items_per_page"] == 50
                and not small["non_2xx"]
            ),
        ),
    ]
    if "skipped" in big:
        rows.append((f"GET {LIST_50}, 1,000,000 events", big["skipped"], "-", "-", "skipped"))
    else:
        of_small = big["req_per_s"] / max(1, small["req_per_s"])
        rows.append(
            (
                f"GET {LIST_50} as a member, {big['events']:,} events ({big['items_per_page']} a page)",
                http(big, "req/s") + f"; {of_small:.2f} x the list at {small['events']:,}",
                f">= {t['list_big_of_small']} x the list at {small['events']:,}",
                f"{ratio(big):.2f}",
                yes(
                    of_small >= t["list_big_of_small"] and big["items_per_page"] == 50 and not big["non_2xx"]
                ),
            )
        )
    rows += [
        (
            "POST /v2/event/list (outbox)",
            http(create, "creates/s"),
            f">= {t['creates_per_s']:,.0f} creates/s",
            f"{ratio(create):.2f}",
            yes(create["req_per_s"] >= t["creates_per_s"] and not create["non_2xx"]),
        ),
        (
            f"event -> first attempt, {first['achieved_rate']} events/s x {SUBSCRIPTIONS} subscriptions",
            f"p50 {first['p50_ms']} ms, p95 {first['p95_ms']} ms, p99 {first['p99_ms']} ms"
            f" ({first['attempts_measured']}/{first['attempts_expected']} attempts; the creates"
            f" themselves answered in p50 {first['create_answered_p50_ms']} ms,"
            f" p95 {first['create_answered_p95_ms']} ms)",
            f"p95 <= {t['first_attempt_p95_ms']:g} ms",
            "-",
            p95_met(first, "first_attempt_p95_ms", "attempts"),
        ),
        (
            f"event -> first attempt, {low['achieved_rate']} events/s x {SUBSCRIPTIONS} (no target: unqueued)",
            f"p50 {low['p50_ms']} ms, p95 {low['p95_ms']} ms, p99 {low['p99_ms']} ms"
            f" ({low['attempts_measured']}/{low['attempts_expected']} attempts)",
            "-",
            "-",
            "-",
        ),
        (
            "deliveries/s of one worker process",
            f"{worker['deliveries_per_s']:,} /s ({worker['deliveries_arrived']:,}/"
            f"{worker['deliveries_expected']:,} in {worker['seconds_first_to_last']} s)",
            f">= {t['deliveries_per_s']:,.0f} /s",
            "-",
            yes(
                worker["deliveries_per_s"] >= t["deliveries_per_s"]
                and worker["deliveries_arrived"] == worker["deliveries_expected"]
            ),
        ),
    ]
    for key, target in (("retry_lateness", True), ("retry_lateness_all_failing", False)):
        if key not in r:
            continue
        late = r[key]
        failing = late.get("failing_subscriptions", SUBSCRIPTIONS)
        rows.append(
            (
                f"retry lateness (start - due), {late['achieved_rate']} events/s x {SUBSCRIPTIONS},"
                f" {failing} of them failing first attempts, schedule 1 s"
                + ("" if target else " (no target: twice the attempts)"),
                f"p50 {late['p50_ms']} ms, p95 {late['p95_ms']} ms, max {late['max_ms']} ms"
                f" ({late['retries_measured']}/{late['retries_expected']} retries)",
                f"p95 <= {t['retry_late_p95_ms']:g} ms" if target else "-",
                "-",
                p95_met(late, "retry_late_p95_ms", "retries") if target else "-",
            )
        )
    # Every process of both suites; a name in both counts with its larger peak.
    peaks = dict(r["peak_rss_mib"])
    for name, mib in r.get("peak_rss_mib_big_list_suite", {}).items():
        peaks[name] = max(mib, peaks.get(name, 0.0))
    for name, mib in peaks.items():
        if name == "bench_receiver":
            continue
        rows.append(
            (f"peak RSS: {name}", f"{mib} MiB", f"< {t['rss_mib']:g} MiB", "-", yes(mib < t["rss_mib"]))
        )
    return rows


def cpu_table(results: dict[str, Any]) -> list[str]:
    """CPU ms per request: a row per process (in order of first appearance), a column per run."""
    runs = [name for name in HTTP_RUNS if "cpu_ms_per_request" in results.get(name, {})]
    processes: list[str] = []
    for run in runs:
        processes += [p for p in results[run]["cpu_ms_per_request"] if p not in processes]
    lines = ["| CPU ms per request | " + " | ".join(runs) + " |", "|---|" + "---:|" * len(runs)]
    for p in processes:
        cells = [str(results[run]["cpu_ms_per_request"].get(p, "-")) for run in runs]
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    idle = [str(results[run]["machine_idle_pct"]) for run in runs]
    lines.append("| machine idle % | " + " | ".join(idle) + " |")
    return lines


def main() -> None:
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (make bench installs it)")
    if seeder() is None:
        print("bench/seed_events.py is missing: list-50 at 1,000,000 events is skipped", file=sys.stderr)
    started = time.monotonic()
    load_before = os.getloadavg()
    results: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "wrk": f"-t2 -c{CONCURRENCY} -d{SECONDS}s --latency",
        "targets": TARGETS,
        **asyncio.run(measure()),
    }
    results["load_average"] = {"before": load_before, "after": os.getloadavg()}
    results["seconds"] = round(time.monotonic() - started, 1)
    rows = verdicts(results)
    results["met"] = {
        row[0]: row[4] == "yes" if row[4] != "skipped" else None for row in rows if row[4] != "-"
    }
    out = ROOT / "bench" / "results" / f"{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print("| figure | measured | target | ratio to baseline | met |\n|---|---|---|---:|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()
    print("\n".join(cpu_table(results)))
    worker = results["worker"]
    print(
        f"\none worker process: {worker['worker_cpu_ms_per_delivery']} ms of its own CPU per delivery"
        " (fan-out included); machine-wide PostgreSQL "
        f"{worker['postgres_cpu_ms_per_delivery (machine-wide)']} ms, RabbitMQ "
        f"{worker['beam.smp_cpu_ms_per_delivery (machine-wide)']} ms"
    )
    for name in ("list_50", "list_50_big"):
        if "populated_by" in results[name]:
            made = results[name]
            print(f"{name}: events made by {made['populated_by']} in {made['populate_seconds']} s")
    before, after = load_before, results["load_average"]["after"]
    print(
        f"\n{results['cpus']} CPUs; load average {before[0]:.2f} before, {after[0]:.2f} after;"
        f" {results['seconds']} s; written to {out.relative_to(ROOT)}"
    )


if __name__ == "__main__":
    main()

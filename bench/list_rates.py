"""Reads of the resource service alone: list-50 at 1,000 events and at 1,000,000, and GET, with
the CPU each request costs the service process and its PostgreSQL backends.

Auth and resource run as their own processes on free ports (auth only issues and checks the
tokens), against a database of their own; events are seeded with bench/seed_events.py (COPY,
then ANALYZE); wrk -t2 -c64 calls the resource service directly. Writes
bench/results/list-rates-<timestamp>.json and prints a Markdown table.

    python bench/list_rates.py [large-count]      (BENCH_SECONDS=10 by default)
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    ADMIN,
    ROOT,
    cpu_seconds,
    delete_amqp_names,
    free_ports,
    herald_env,
    latency_ms,
    own_names,
    port_settings,
    spawn,
)
from bench.seed_events import seed_events

SERVER = os.environ.get("HERALD_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
SMALL = 1_000


@dataclass
class Services:
    resource: str
    auth: str
    dsn: str
    pid: int  # the resource process
    admin: str  # tokens
    member: str
    member_id: uuid.UUID


async def _ready(session: aiohttp.ClientSession, url: str, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("a service exited while starting")
        try:
            async with session.get(url + "/readyz") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} was not ready within 120 s")


@asynccontextmanager
async def running() -> AsyncIterator[Services]:
    auth_port, resource_port, spare_a, spare_b = free_ports(4)
    db, prefix = own_names("list_")
    env = herald_env(
        f"{SERVER}/{db}",
        prefix,
        **port_settings(auth=auth_port, resource=resource_port, edge=spare_a, webhook=spare_b),
        HERALD_AUTH_URL=f"http://127.0.0.1:{auth_port}",
    )
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for name in ("auth", "resource"):
            subprocess.run(
                [sys.executable, "-m", f"services.{name}", "migrate"], cwd=ROOT, env=env, check=True
            )
        for name in ("auth", "resource"):
            procs.append(spawn(f"services.{name}", env))
        auth, resource = (f"http://127.0.0.1:{port}" for port in (auth_port, resource_port))
        async with aiohttp.ClientSession() as session:
            for url in (auth, resource):
                await _ready(session, url, procs)
            async with session.post(auth + "/v2/requesttoken", json=ADMIN) as resp:
                admin = await resp.json()
            member = {
                "email": "member@bench.local",
                "password": "bench-member-pw",
                "name": "M",
                "roles": ["member"],
            }
            headers = {"Authorization": f"Bearer {admin}"}
            async with session.post(auth + "/v2/user/list", json=member, headers=headers) as resp:
                member_id = uuid.UUID((await resp.json())["id"])
            body = {"email": member["email"], "password": member["password"]}
            async with session.post(auth + "/v2/requesttoken", json=body) as resp:
                member_token = await resp.json()
        yield Services(resource, auth, f"{SERVER}/{db}", procs[1].pid, admin, member_token, member_id)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        await delete_amqp_names(prefix)
        admin_conn = await asyncpg.connect(f"{SERVER}/postgres")
        await admin_conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await admin_conn.close()


async def backend_pids(dsn: str) -> list[int]:
    """The resource pool's PostgreSQL backends (their CPU is the database's share of a read)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'herald-resource'"
        )
    finally:
        await conn.close()
    return [row["pid"] for row in rows]


def _cpu(pids: list[int]) -> dict[int, float]:
    found = {}
    for pid in pids:
        try:
            found[pid] = cpu_seconds(pid)
        except OSError:
            continue
    return found


def run_wrk(url: str, token: str, seconds: int) -> dict[str, Any]:
    out = subprocess.run(
        ["wrk", "-t2", "-c64", f"-d{seconds}s", "--latency", "-H", f"Authorization: Bearer {token}", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    total = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "requests": int(total.group(1)) if total else 0,
        "req_per_s": round(float(rps.group(1))) if rps else 0,
        "p50_ms": latency_ms(out, "50"),
        "p99_ms": latency_ms(out, "99"),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


async def measure(services: Services, url: str, token: str, seconds: int) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:  # warm: statements prepared, pool open
        for _ in range(20):
            async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
                assert resp.status == 200, await resp.text()
    pids = await backend_pids(services.dsn)
    service_before, db_before = cpu_seconds(services.pid), _cpu(pids)
    result = await asyncio.to_thread(run_wrk, url, token, seconds)
    # The pool may have opened connections meanwhile: theirs counts from zero.
    service_after, db_after = cpu_seconds(services.pid), _cpu(await backend_pids(services.dsn))
    n = max(result["requests"], 1)
    result["resource_cpu_ms"] = round((service_after - service_before) * 1000 / n, 3)
    result["postgres_cpu_ms"] = round(
        sum(db_after[p] - db_before.get(p, 0.0) for p in db_after) * 1000 / n, 3
    )
    return result


async def one_event(services: Services) -> str:
    conn = await asyncpg.connect(services.dsn, server_settings={"search_path": "resource"})
    try:
        found = await conn.fetchval(
            "SELECT id FROM resources WHERE type = 'event' AND status = 'approved' ORDER BY id LIMIT 1"
        )
    finally:
        await conn.close()
    return str(found)


async def figures(services: Services, seconds: int) -> dict[str, Any]:
    base = f"{services.resource}/v2/event/list"
    return {
        "list_50_member": await measure(services, base, services.member, seconds),
        "list_50_admin": await measure(services, base, services.admin, seconds),
        "list_50_member_tag": await measure(services, f"{base}?tags=tag7", services.member, seconds),
        "get_member": await measure(
            services, f"{services.resource}/v2/event/{await one_event(services)}", services.member, seconds
        ),
    }


async def main(large: int, seconds: int) -> dict[str, Any]:
    report: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "seconds": seconds,
    }
    async with running() as services:
        owners = [services.member_id, *(uuid.uuid4() for _ in range(1999))]
        seeded = await seed_events(services.dsn, SMALL, owners=owners)
        report[f"at_{SMALL}"] = await figures(services, seconds)
        if large > SMALL:
            seeded = await seed_events(services.dsn, large - SMALL, owners=owners, locations=0, seed=2)
            report["seed_seconds"] = round(seeded.seconds, 1)
            report["seed_phases"] = {name: round(seconds, 1) for name, seconds in seeded.phases.items()}
            report[f"at_{large}"] = await figures(services, seconds)
    return report


def print_table(report: dict[str, Any]) -> None:
    print("| rows | request | req/s | p50 ms | p99 ms | resource CPU ms | PostgreSQL CPU ms |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for key, runs in report.items():
        if not key.startswith("at_"):
            continue
        for name, r in runs.items():
            print(
                f"| {int(key[3:]):,} | {name} | {r['req_per_s']:,} | {r['p50_ms']} | {r['p99_ms']}"
                f" | {r['resource_cpu_ms']} | {r['postgres_cpu_ms']} |"
            )


if __name__ == "__main__":
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed")
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    result = asyncio.run(main(count, int(os.environ.get("BENCH_SECONDS", "10"))))
    out = ROOT / "bench" / "results" / f"list-rates-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"\nwritten to {out.relative_to(ROOT)}")

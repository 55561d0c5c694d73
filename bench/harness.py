"""What the benchmarks share: the suite started as `make run` starts it (on free ports, a
database and AMQP names of its own, limits off), and wrk with its figures parsed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
ADMIN = {"email": "admin@herald.local", "password": "bench-admin-pw"}
# `python -m services` starts a service's i-th extra process on its port + i * 100; a bench
# leaves room for up to 8 (one a core, as many as it starts by itself).
SPREAD_STEP = 100
MAX_PROCESSES = 8


@dataclass
class RunningSuite:
    base: str
    ports: dict[str, int]
    token: str
    launcher_pid: int
    env: dict[str, str]  # what the services run with (another process can join the suite)

    def peak_rss_mib(self) -> dict[str, float]:
        """Each process's peak resident memory (VmHWM), by name (see `suite_processes`)."""
        peaks: dict[str, float] = {}
        for name, pid in self.pids().items():
            with contextlib.suppress(OSError):  # gone meanwhile
                peaks[name] = peak_rss_of(pid)
        return peaks

    def pids(self) -> dict[str, int]:
        """Every process of the suite, by name (see `suite_processes`)."""
        return suite_processes(self.launcher_pid)


def descendants(pid: int) -> list[int]:
    """Every live process below `pid`, parents before their children."""
    found: list[int] = []
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return found  # gone meanwhile
    for child in map(int, children):
        found += [child, *descendants(child)]
    return found


def process_name(pid: int) -> str:
    """`resource` for `python -m services.resource`, `nginx master` and `nginx worker` for
    nginx's processes (they retitle themselves), the command name otherwise."""
    args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    for arg in args:
        if arg.startswith(b"services."):
            return arg.decode().rsplit(".", 1)[-1]
    title = args[0].decode(errors="replace")
    if title.startswith("nginx: "):
        return "nginx " + title.removeprefix("nginx: ").split()[0]
    return Path(f"/proc/{pid}/comm").read_text().strip()


def suite_processes(launcher_pid: int) -> dict[str, int]:
    """The launcher (`suite`) and every process below it: services (several of one kind are
    `resource`, `resource 2`, ...), nginx's master and workers. A service's short-lived
    `migrate` run is over before the suite answers."""
    named = {"suite": launcher_pid}
    for pid in descendants(launcher_pid):
        try:
            name = process_name(pid)
        except OSError:
            continue  # gone meanwhile
        unique, n = name, 1
        while unique in named:
            n += 1
            unique = f"{name} {n}"
        named[unique] = pid
    return named


def peak_rss_of(pid: int) -> float:
    """A live process's peak resident memory (VmHWM) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a live process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds(command: str) -> dict[int, float]:
    """CPU time of every process of this name on the machine (PostgreSQL's backends, RabbitMQ's
    beam.smp), by pid: shared with whoever else uses them meanwhile."""
    found: dict[int, float] = {}
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == command:
                pid = int(comm.parent.name)
                found[pid] = cpu_seconds(pid)
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return found


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two `machine_cpu_seconds`: of the processes alive at the end (one
    that exited meanwhile takes its time with it; a new one counts from zero)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def machine_idle() -> tuple[float, float]:
    """(idle, total) CPU time of the whole machine so far, from /proc/stat, in clock ticks."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return ticks[3] + ticks[4], sum(ticks)


def free_ports(n: int, spread: int = 0) -> list[int]:
    """`n` ports free now; with `spread`, each one's `port + i * SPREAD_STEP` for i up to
    `spread` too (where a service's extra processes listen)."""
    ports: list[int] = []
    while len(ports) < n:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        extra = [port + i * SPREAD_STEP for i in range(1, spread + 1)]
        if port not in ports and all(_bindable(p) for p in extra):
            ports.append(port)
    return ports


def _bindable(port: int) -> bool:
    if port > 65535:
        return False
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def own_names(kind: str = "") -> tuple[str, str]:
    """A database name and an AMQP name prefix of a bench run's own."""
    return f"herald_bench_{kind}{uuid.uuid4().hex[:8]}", f"herald.bench.{uuid.uuid4().hex[:8]}"


def port_settings(**ports: int) -> dict[str, str]:
    """HERALD_<NAME>_PORT for each of `ports` (edge=8080: HERALD_EDGE_PORT=8080)."""
    return {f"HERALD_{name.upper()}_PORT": str(port) for name, port in ports.items()}


def latency_ms(out: str, percentile: str) -> float:
    """The latency at `percentile` that wrk --latency printed in `out`, in ms (NaN: none)."""
    m = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)\b", out, re.M)
    if not m:
        return float("nan")
    value, unit = float(m.group(1)), m.group(2)
    return round(value / 1000 if unit == "us" else value * 1000 if unit == "s" else value, 2)


def herald_env(database_url: str, prefix: str, **settings: str) -> dict[str, str]:
    """The environment of a bench's own Herald processes: this database, AMQP names under
    `prefix`, the bench's admin, quiet logs; `settings`: more HERALD_* variables."""
    return {
        **os.environ,
        "HERALD_DATABASE_URL": database_url,
        "HERALD_AUTH_EXCHANGE": f"{prefix}.auth",
        "HERALD_DOMAIN_EXCHANGE": f"{prefix}.domain",
        "HERALD_QUEUE_PREFIX": prefix,
        "HERALD_ADMIN_PASSWORD": ADMIN["password"],
        "HERALD_LOG_LEVEL": "WARNING",
        **settings,
    }


def spawn(module: str, env: dict[str, str], output: IO[bytes] | None = None) -> subprocess.Popen[bytes]:
    """`python -m module` from the repository root in `env`; its output to `output`
    (discarded by default)."""
    return subprocess.Popen(
        [sys.executable, "-m", module],
        cwd=ROOT,
        env=env,
        stdout=output or subprocess.DEVNULL,
        stderr=subprocess.STDOUT if output else subprocess.DEVNULL,
    )


@asynccontextmanager
async def running_suite(output: IO[bytes] | None = None, **extra_env: str) -> AsyncIterator[RunningSuite]:
    """The suite on free ports, the public door (nginx) on HERALD_EDGE_PORT.
    `output`: where the services' logs go (discarded by default)."""
    edge, docs, edge_status = free_ports(3)
    auth, res, wh = free_ports(3, spread=MAX_PROCESSES - 1)
    db, prefix = own_names()
    env = herald_env(
        f"postgresql://postgres@127.0.0.1:5432/{db}",
        prefix,
        **port_settings(edge=edge, auth=auth, resource=res, webhook=wh, docs=docs),
        HERALD_AUTH_URL=f"http://127.0.0.1:{auth}",
        HERALD_RESOURCE_URL=f"http://127.0.0.1:{res}",
        HERALD_WEBHOOK_URL=f"http://127.0.0.1:{wh}",
        HERALD_DOCS_URL=f"http://127.0.0.1:{docs}",
        HERALD_EDGE_STATUS_ADDRESS=f"127.0.0.1:{edge_status}",
        HERALD_USER_RATE="0",
        HERALD_REQUESTTOKEN_RATE="0",
        **extra_env,
    )
    proc = spawn("services", env, output)
    base = f"http://127.0.0.1:{edge}"
    try:
        async with aiohttp.ClientSession() as session:
            token = await _until_ready(session, base, proc)
        ports = {"edge": edge, "auth": auth, "resource": res, "webhook_delivery": wh, "docs": docs}
        yield RunningSuite(base, ports, token, proc.pid, env)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        await delete_amqp_names(prefix)
        subprocess.run(
            [
                "psql",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-qc",
                f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)',
            ],
            check=False,
            capture_output=True,
        )


async def _until_ready(session: aiohttp.ClientSession, base: str, proc: subprocess.Popen[bytes]) -> str:
    """The admin's token, once the public door hands one out and the resource and webhook
    services answer through it (whether or not the door serves their /readyz). Up to two minutes
    (a busy machine starts slowly), then a clear failure."""
    deadline = asyncio.get_running_loop().time() + 120
    token: str | None = None
    while asyncio.get_running_loop().time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the suite exited with code {proc.returncode} while starting")
        with contextlib.suppress(aiohttp.ClientError):
            if token is None:
                async with session.post(base + "/v2/requesttoken", json=ADMIN) as resp:
                    if resp.status == 200:
                        token = await resp.json()
            if token is not None:
                headers = {"Authorization": f"Bearer {token}"}
                answered = 0
                for path in ("/v2/event/list?limit=1", "/v2/subscription/list"):
                    async with session.get(base + path, headers=headers) as resp:
                        answered += resp.status == 200
                if answered == 2:
                    return token
        await asyncio.sleep(0.2)
    raise RuntimeError("the suite was not ready within 120 s")


async def delete_amqp_names(prefix: str) -> None:
    """The exchanges and durable queues the suite declares under `prefix` (the benchmarks and
    the tests both clean up with this): left behind, each run's quorum queues would pile up."""
    import aio_pika

    connection = await aio_pika.connect(
        os.environ.get("HERALD_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    )
    async with connection:
        channel = await connection.channel()
        for suffix in (
            "auth",
            "domain",
            "dead-letter",
            "webhook_delivery.lanes",
            "webhook_delivery.dead-letter",
        ):
            await channel.exchange_delete(f"{prefix}.{suffix}")
        for queue in (
            "dead-letter",
            "auth.dead-letter",
            "resource.dead-letter",
            "webhook_delivery.dead-letter",
            "gateway.dead-letter",
            "webhook_delivery.fanout",
            "webhook_delivery.owners",
            "webhook_delivery.lane.first",
            "webhook_delivery.lane.retry",
        ):
            await channel.queue_delete(f"{prefix}.{queue}")


def wrk(
    url: str,
    token: str | None,
    seconds: int,
    *,
    body: bytes | None = None,
    connections: int = 64,
    timeout: int | None = None,
) -> dict[str, float]:
    """wrk -t2 -c64 with --latency; with `body`, every request is a JSON POST of it; `timeout`:
    wrk's --timeout in seconds (its default, 2 s, counts slower answers as errors)."""
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if timeout is not None:
        cmd.append(f"--timeout={timeout}s")
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    script = None
    if body is not None:
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        quoted = body.decode().replace("\\", "\\\\").replace('"', '\\"')
        script.write(
            f'wrk.method = "POST"\nwrk.body = "{quoted}"\nwrk.headers["Content-Type"] = "application/json"\n'
        )
        script.close()
        cmd += ["-s", script.name]
    try:
        out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    finally:
        if script is not None:
            os.unlink(script.name)

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "req_per_s": round(rps),
        "p50_ms": latency_ms(out, "50"),
        "p99_ms": latency_ms(out, "99"),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(map(int, errors.groups())) if errors else 0,
    }

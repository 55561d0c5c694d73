"""The suite as operators run it: `python -m services` (what `make run` starts), real
processes on real ports behind nginx, supervised, stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import AMQP_URL, ROOT, delete_amqp_names

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]  # hang bounds only: a busy machine is slow


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture
def suite_env(fresh_database_url: str) -> Iterator[dict[str, str]]:
    edge, auth, resource, webhook, docs, status = _free_ports(6)
    prefix = f"herald.test.{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "HERALD_DATABASE_URL": fresh_database_url,
        "HERALD_AMQP_URL": AMQP_URL,
        "HERALD_EDGE_PORT": str(edge),
        "HERALD_EDGE_STATUS_ADDRESS": f"127.0.0.1:{status}",
        "HERALD_DOCS_PORT": str(docs),
        "HERALD_DOCS_URL": f"http://127.0.0.1:{docs}",
        # Two resource processes (the second on port + 100), one of each other service.
        "HERALD_RESOURCE_PROCESSES": "2",
        "HERALD_AUTH_PROCESSES": "1",
        "HERALD_WEBHOOK_PROCESSES": "1",
        "HERALD_AUTH_PORT": str(auth),
        "HERALD_RESOURCE_PORT": str(resource),
        "HERALD_WEBHOOK_PORT": str(webhook),
        "HERALD_AUTH_URL": f"http://127.0.0.1:{auth}",
        "HERALD_RESOURCE_URL": f"http://127.0.0.1:{resource}",
        "HERALD_WEBHOOK_URL": f"http://127.0.0.1:{webhook}",
        "HERALD_AUTH_EXCHANGE": f"{prefix}.auth",
        "HERALD_DOMAIN_EXCHANGE": f"{prefix}.domain",
        "HERALD_QUEUE_PREFIX": prefix,
        "HERALD_ADMIN_EMAIL": "root@e2e.local",
        "HERALD_ARGON2_MEMORY_KIB": "8192",
        "HERALD_ARGON2_TIME_COST": "1",
        "HERALD_SHUTDOWN_TIMEOUT": "3",
    }
    env.pop("HERALD_ADMIN_PASSWORD", None)
    yield env
    asyncio.run(delete_amqp_names(prefix))


async def _wait_ready(url: str, seconds: float = 120) -> None:
    """`seconds` only bounds a hang: a busy machine starts the suite's processes slowly."""
    async with aiohttp.ClientSession() as session:
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            try:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as resp:
                    if resp.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):  # a slow answer is asked again, not a failure
                pass
            await asyncio.sleep(0.3)
    raise AssertionError(f"{url} never became ready")


async def _start_suite(env: dict[str, str], log_path: Path, **popen: Any) -> subprocess.Popen[bytes]:
    """`python -m services` with its output in `log_path`, once the edge is ready."""
    # Appending: nginx opens the same file for its access log (through /dev/stdout).
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=popen.pop("stderr", subprocess.STDOUT),
            **popen,
        )
    try:
        await _wait_ready(f"http://127.0.0.1:{env['HERALD_EDGE_PORT']}/readyz")
    except BaseException:
        proc.kill()
        raise
    return proc


def _children(pid: int) -> list[str]:
    return subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()


def _stop(proc: subprocess.Popen[bytes], seconds: float = 30) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("the process did not stop on SIGTERM") from None


async def test_the_suite_starts_serves_and_stops_on_sigterm(
    suite_env: dict[str, str], tmp_path: Path
) -> None:
    stderr_path = tmp_path / "stderr.log"
    with open(stderr_path, "ab") as stderr, open(tmp_path / "stdout.log", "ab") as stdout:
        # DEBUG: the request lines of answers below 400, which the request ids are checked in.
        env = {**suite_env, "HERALD_LOG_LEVEL": "DEBUG"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "services"], cwd=ROOT, env=env, stdout=stdout, stderr=stderr
        )
    edge = f"http://127.0.0.1:{suite_env['HERALD_EDGE_PORT']}"
    try:
        await _wait_ready(edge + "/readyz")
        printed = re.findall(r"first admin root@e2e\.local created; password: (\S+)", stderr_path.read_text())
        assert len(printed) == 1, "the generated admin password is printed exactly once"
        async with aiohttp.ClientSession() as session:
            async with session.post(
                edge + "/v2/requesttoken", json={"email": "root@e2e.local", "password": printed[0]}
            ) as resp:
                assert resp.status == 200
                token = await resp.json()
            async with session.get(
                edge + "/v2/user/me",
                headers={"Authorization": f"Bearer {token}", "X-Request-ID": "e2e-req-1"},
            ) as resp:
                assert resp.status == 200
                assert (await resp.json())["roles"] == ["admin"]
            ports = [suite_env[f"HERALD_{name}_PORT"] for name in ("AUTH", "RESOURCE", "WEBHOOK", "DOCS")]
            ports.append(str(int(suite_env["HERALD_RESOURCE_PORT"]) + 100))  # the second resource
            for port in ports:
                async with session.get(f"http://127.0.0.1:{port}/readyz") as resp:
                    assert resp.status == 200
            async with session.get(edge + "/v2/openapi.json") as resp:
                assert resp.status == 200 and "/v2/user/me" in (await resp.json())["paths"]
    finally:
        code = _stop(proc)
    assert code == 0
    logs = (tmp_path / "stdout.log").read_text().splitlines()
    assert any('"request_id":"e2e-req-1"' in line and '"service":"auth"' in line for line in logs)
    assert any('"request_id":"e2e-req-1"' in line and '"service":"edge"' in line for line in logs)
    assert printed[0] not in (tmp_path / "stdout.log").read_text(), "the password must never be logged"


async def test_two_auth_processes_starting_together_both_come_up(suite_env: dict[str, str]) -> None:
    ports = _free_ports(2)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "services.auth"],
            cwd=ROOT,
            env={**suite_env, "HERALD_AUTH_PORT": str(port), "HERALD_ADMIN_PASSWORD": "e2e-admin-pw"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        await asyncio.gather(*(_wait_ready(f"http://127.0.0.1:{port}/readyz") for port in ports))
        async with aiohttp.ClientSession() as session:
            tokens = []
            for port in ports:
                async with session.post(
                    f"http://127.0.0.1:{port}/v2/requesttoken",
                    json={"email": "root@e2e.local", "password": "e2e-admin-pw"},
                ) as resp:
                    assert resp.status == 200
                    tokens.append(await resp.json())
            # One signing key and one admin between them: each accepts the other's token.
            for port, token in zip(ports, reversed(tokens), strict=True):
                async with session.get(
                    f"http://127.0.0.1:{port}/v2/user/list", headers={"Authorization": f"Bearer {token}"}
                ) as resp:
                    assert resp.status == 200
                    assert len(await resp.json()) == 1
    finally:
        codes = [_stop(p) for p in procs]
    assert codes == [0, 0]


async def _logged(log_path: Path, message: str, seconds: float = 30) -> None:
    async with asyncio.timeout(seconds):
        while f'"message":"{message}"' not in log_path.read_text():  # noqa: ASYNC110 (a file to poll)
            await asyncio.sleep(0.1)


def _child_pids(pid: int, pattern: str) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid), "-f", pattern], capture_output=True, text=True)
    return [int(p) for p in found.stdout.split()]


async def test_a_killed_process_comes_back_and_the_suite_keeps_answering(
    suite_env: dict[str, str], tmp_path: Path
) -> None:
    """SIGKILL a resource process, then auth, then nginx itself: each is started again (the
    log says so), the other resource process answers meanwhile, /readyz shows the gap and
    then recovers, and the suite stops cleanly at the end."""
    log_path = tmp_path / "out.log"
    env = {**suite_env, "HERALD_ADMIN_PASSWORD": "e2e-admin-pw"}
    proc = await _start_suite(env, log_path)
    edge = f"http://127.0.0.1:{env['HERALD_EDGE_PORT']}"
    try:
        assert len(_children(proc.pid)) == 6  # auth, 2 x resource, webhook_delivery, docs, nginx
        async with aiohttp.ClientSession() as session:
            async with session.post(
                edge + "/v2/requesttoken", json={"email": "root@e2e.local", "password": "e2e-admin-pw"}
            ) as resp:
                token = await resp.json()
            headers = {"Authorization": f"Bearer {token}"}

            async def ready() -> int:
                async with session.get(edge + "/readyz") as resp:
                    return resp.status

            resource = _child_pids(proc.pid, "services.resource")
            assert len(resource) == 2
            os.kill(resource[0], signal.SIGKILL)
            saw_gap = False
            for _ in range(20):  # the other process answers every read meanwhile
                async with session.get(edge + "/v2/event/list", headers=headers) as resp:
                    assert resp.status == 200
                saw_gap = saw_gap or await ready() == 503
            assert saw_gap, "/readyz never showed the dead process"
            await _logged(log_path, "starting resource#1 again")
            await _wait_ready(edge + "/readyz")
            assert len(_child_pids(proc.pid, "services.resource")) == 2

            os.kill(_child_pids(proc.pid, "services.auth")[0], signal.SIGKILL)
            await _logged(log_path, "starting auth again")
            await _wait_ready(edge + "/readyz")
            async with session.get(edge + "/v2/user/me", headers=headers) as resp:
                assert resp.status == 200

            os.kill(_child_pids(proc.pid, "nginx")[0], signal.SIGKILL)
            await _logged(log_path, "starting edge again")
            await _wait_ready(edge + "/readyz")
    finally:
        code = _stop(proc)
    assert code == 0
    logs = log_path.read_text()
    for name in ("resource#1", "auth", "edge"):
        assert f'"message":"{name} exited with -9; starting it again in 0.5 s"' in logs, name
        assert f'"message":"starting {name} again"' in logs, name


async def test_a_process_that_keeps_dying_stops_the_suite(suite_env: dict[str, str], tmp_path: Path) -> None:
    """Auth cannot start (its signing key file is missing): after repeated quick deaths the
    suite gives up, stops everything and exits 1."""
    env = {**suite_env, "HERALD_SIGNING_KEY_FILE": str(tmp_path / "missing.pem")}
    log_path = tmp_path / "out.log"
    with open(log_path, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "services"], cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        assert proc.wait(90) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
    logs = log_path.read_text()
    assert logs.count('"message":"starting auth again"') == 4
    assert "auth exited with 1, the 5th quick death in a row; giving up" in logs
    assert not _children(proc.pid)


async def test_a_port_in_use_is_one_clear_error(suite_env: dict[str, str], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", int(suite_env["HERALD_RESOURCE_PORT"]) + 100))
        taken.listen()
        result = subprocess.run(
            [sys.executable, "-m", "services"],
            cwd=ROOT,
            env=suite_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if '"level":"error"' in line]
    assert len(errors) == 1, output
    port = int(suite_env["HERALD_RESOURCE_PORT"]) + 100
    assert f"port {port} on 127.0.0.1 (HERALD_RESOURCE_PORT + 100 (process 2)) is already in use" in errors[0]


async def test_a_service_that_cannot_bind_says_so_in_one_line(suite_env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "services.docs"],
            cwd=ROOT,
            env={**suite_env, "HERALD_DOCS_PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    errors = [line for line in result.stdout.splitlines() if '"level":"error"' in line]
    assert (
        len(errors) == 1 and f"127.0.0.1:{port}: the port is already in use (HERALD_DOCS_PORT)" in errors[0]
    )


async def test_ctrl_c_in_a_terminal_stops_everything_cleanly(
    suite_env: dict[str, str], tmp_path: Path
) -> None:
    """A terminal's Ctrl-C signals the whole foreground process group: the suite must still
    stop each service once, and let each finish its clean-up."""
    log_path = tmp_path / "out.log"
    proc = await _start_suite(suite_env, log_path, start_new_session=True)
    try:
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    logs = log_path.read_text()
    for trouble in ("Traceback", "Unclosed", "cancelled", '"level":"error"'):
        assert trouble not in logs, trouble


async def test_services_do_not_outlive_a_killed_launcher(suite_env: dict[str, str], tmp_path: Path) -> None:
    proc = await _start_suite(suite_env, tmp_path / "out.log")
    children = _children(proc.pid)
    try:
        assert len(children) == 6
        proc.kill()
        proc.wait(10)
        deadline = asyncio.get_running_loop().time() + 40
        alive = children
        while alive and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.2)
            alive = [
                c
                for c in children
                if Path(f"/proc/{c}").exists() and "Z" not in Path(f"/proc/{c}/stat").read_text().split()[2]
            ]
        assert alive == [], "services kept running after the launcher was killed"
    finally:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(child), signal.SIGKILL)

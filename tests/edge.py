"""A real nginx edge for tests: rendered from the test's settings by shared/edge.py (the same
template `python -m services` and docker compose use), in the foreground, on a free port."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from services.supervisor import _die_with_parent
from shared.config import Settings
from shared.edge import nginx_binary, nginx_command, write_config

# Every nginx a test started and has not stopped: the session's end stops what is left.
RUNNING: set[Edge] = set()


def assert_nginx_accepts(text: str, hosts: Iterable[str], directory: Path) -> None:
    """`nginx -t` passes the configuration `text` once `hosts` (names that only the cluster or
    compose resolves) stand for 127.0.0.1; the test fails where there is no nginx."""
    for host in hosts:
        text = text.replace(f"server {host}:", "server 127.0.0.1:")
    conf = directory / "nginx.conf"
    conf.write_text(text)
    try:
        binary = nginx_binary()
    except FileNotFoundError as exc:
        pytest.fail(str(exc))
    result = subprocess.run(
        [binary, "-t", "-p", str(directory), "-c", str(conf), "-e", "stderr"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports: each socket stays bound until all are picked (picked one at
    a time, the kernel may hand the same port out twice)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def require_nginx() -> str:
    try:
        return nginx_binary()
    except FileNotFoundError as exc:
        pytest.fail(str(exc))  # `make test` installs it: its absence is a broken set-up, not a skip


@dataclass(eq=False)
class Edge:
    settings: Settings
    run_dir: Path
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.edge_port}"

    @property
    def status_url(self) -> str:
        return f"http://{self.settings.edge_status_address}"

    def access_log(self) -> list[dict[str, Any]]:
        """The complete lines so far: nginx writes a request's line once it has finished it,
        which may be just after the client has read the answer."""
        path = self.run_dir / "access.log"
        raw = path.read_bytes() if path.exists() else b""
        return [orjson.loads(line) for line in raw[: raw.rfind(b"\n") + 1].splitlines()]

    def error_log(self) -> str:
        return (self.run_dir / "error.log").read_text(errors="replace")

    async def stop(self) -> None:
        RUNNING.discard(self)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: finish what is in flight
            try:
                await asyncio.to_thread(self.proc.wait, 10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                await asyncio.to_thread(self.proc.wait)
        shutil.rmtree(self.run_dir, ignore_errors=True)


async def _listening(port: int) -> bool:
    with contextlib.suppress(OSError):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()
        return True
    return False


async def start_edge(settings: Settings, **changes: Any) -> Edge:
    """nginx in front of the services `settings` name (each with one process), on free ports."""
    require_nginx()
    for _attempt in range(3):  # a free port can be taken between the check and nginx's bind
        # Two distinct ports: on one port the status server (rendered first) would answer
        # the public paths with nginx's own 404.
        public, status = free_ports(2)
        wired = dataclasses.replace(
            settings,
            host="127.0.0.1",
            edge_port=public,
            edge_status_address=f"127.0.0.1:{status}",
            edge_workers=1,
            **changes,
        )
        run_dir = Path(tempfile.mkdtemp(prefix="herald-edge-"))
        conf = write_config(wired, run_dir, access_log=str(run_dir / "access.log"))
        with open(run_dir / "error.log", "wb") as errors:
            # Dies with the test process, however it ends.
            proc = subprocess.Popen(
                nginx_command(conf, run_dir), stdout=errors, stderr=errors, preexec_fn=_die_with_parent
            )
        edge = Edge(wired, run_dir, proc)
        RUNNING.add(edge)
        for _ in range(500):
            if proc.poll() is not None or await _listening(wired.edge_port):
                break
            await asyncio.sleep(0.01)
        if proc.poll() is None:
            return edge
        log = edge.error_log()
        await edge.stop()
        if "Address already in use" not in log:
            raise AssertionError(f"nginx did not start: {log}")
    raise AssertionError("nginx found no free port")

"""What `python -m services` runs: migrations, then the services' processes, the docs service
and nginx in front of them, each a child of this process, kept alive.

- Ports are checked before anything starts: one taken port is one error naming its setting.
- A child that dies is started again after a pause that doubles with each quick death (one that
  came within QUICK_DEATH_SECONDS of its start), from RESTART_DELAY up to MAX_RESTART_DELAY;
  after GIVE_UP_AFTER quick deaths in a row the suite stops and exits 1. While a process is
  down, the edge's /readyz says so (the docs service asks every process).
- SIGINT, SIGTERM, SIGHUP or SIGQUIT stop the suite gracefully: nginx first (SIGQUIT: it stops
  accepting and finishes what is in flight, while the services behind it still answer), then
  the services (SIGTERM: each drains for HERALD_SHUTDOWN_TIMEOUT). Exit status 0 only when
  every child stopped cleanly.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from shared.config import Settings
from shared.edge import PORT_STEP, SERVICES, nginx_command, process_count, write_config
from shared.service import PORT_SETTINGS

log = logging.getLogger("herald.suite")

PR_SET_PDEATHSIG = 1
RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 10.0
QUICK_DEATH_SECONDS = 10.0
GIVE_UP_AFTER = 5


def _die_with_parent() -> None:
    """In the child, before it runs: if this launcher dies (even by SIGKILL), the kernel sends
    the child SIGTERM, so nothing is left running on its own (Linux only)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    quick_deaths: int = 0
    restart_at: float | None = None
    exit_codes: list[int] = field(default_factory=list)

    def start(self) -> None:
        # A session of its own: a Ctrl-C in the terminal reaches only the launcher, which then
        # signals each child once (a second signal would cut its clean-up short); and nginx's
        # workers share its process group, so a dead master's workers can be ended with it.
        self.proc = subprocess.Popen(
            self.argv, env=self.env, start_new_session=True, preexec_fn=_die_with_parent
        )
        self.started_at = time.monotonic()
        self.restart_at = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum: int) -> None:
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(signum)

    def kill_group(self) -> None:
        """SIGKILL whatever is left in the child's process group (nginx's orphaned workers,
        which would keep the port)."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def died(self, now: float) -> float | None:
        """Note a death; the pause before the restart, or None to give up."""
        assert self.proc is not None
        self.exit_codes.append(self.proc.returncode)
        self.kill_group()
        if now - self.started_at < QUICK_DEATH_SECONDS:
            self.quick_deaths += 1
        else:
            self.quick_deaths = 1
        if self.quick_deaths >= GIVE_UP_AFTER:
            return None
        delay = min(RESTART_DELAY * 2 ** (self.quick_deaths - 1), MAX_RESTART_DELAY)
        self.restart_at = now + delay
        return delay


def _service_env(settings: Settings, service: str, index: int) -> dict[str, str]:
    env = dict(os.environ)
    env[PORT_SETTINGS[service]] = str(_base_port(settings, service) + index * PORT_STEP)
    return env


def _base_port(settings: Settings, service: str) -> int:
    return {
        "auth": settings.auth_port,
        "resource": settings.resource_port,
        "webhook_delivery": settings.webhook_port,
    }[service]


def plan(settings: Settings, run_dir: Path) -> tuple[list[Child], Child]:
    """The services' processes (each on its own port, as shared.edge.upstreams lists them),
    the docs service, and nginx."""
    children = []
    for service in SERVICES:
        count = process_count(settings, service)
        for i in range(count):
            name = service if count == 1 else f"{service}#{i + 1}"
            children.append(
                Child(name, [sys.executable, "-m", f"services.{service}"], _service_env(settings, service, i))
            )
    children.append(Child("docs", [sys.executable, "-m", "services.docs"], dict(os.environ)))
    conf = write_config(settings, run_dir)
    edge = Child("edge", nginx_command(conf, run_dir), dict(os.environ))
    return children, edge


def ports(settings: Settings) -> list[tuple[str, int, str]]:
    """(host, port, the setting that picks it) of every port the suite listens on."""
    found = [(settings.host, settings.edge_port, "HERALD_EDGE_PORT")]
    if settings.edge_status_address:
        host, _, port = settings.edge_status_address.rpartition(":")
        found.append((host.strip("[]") or "0.0.0.0", int(port), "HERALD_EDGE_STATUS_ADDRESS"))
    for service in SERVICES:
        for i in range(process_count(settings, service)):
            how = PORT_SETTINGS[service] + (f" + {i * PORT_STEP} (process {i + 1})" if i else "")
            found.append((settings.host, _base_port(settings, service) + i * PORT_STEP, how))
    found.append((settings.host, settings.docs_port, "HERALD_DOCS_PORT"))
    return found


def port_problem(settings: Settings) -> str | None:
    """Why the suite cannot listen where its settings say, or None."""
    seen: dict[int, str] = {}
    for _host, port, setting in ports(settings):
        if port in seen:
            return f"port {port} is wanted twice: by {seen[port]} and by {setting}"
        seen[port] = setting
    for host, port, setting in ports(settings):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError as exc:
                reason = "already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
                return f"port {port} on {host} ({setting}) is {reason}; stop what uses it or change {setting.split()[0]}"
    return None


def run(settings: Settings) -> int:
    problem = port_problem(settings)
    if problem is not None:
        log.error("Herald cannot start: %s", problem)
        return 1
    for service in SERVICES:
        result = subprocess.run([sys.executable, "-m", f"services.{service}", "migrate"])
        if result.returncode != 0:
            log.error("the migrations of %s failed (exit status %s)", service, result.returncode)
            return 1
    run_dir = Path(tempfile.mkdtemp(prefix="herald-edge-"))
    try:
        return Supervisor(settings, *plan(settings, run_dir)).run()
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


class Supervisor:
    def __init__(self, settings: Settings, services: list[Child], edge: Child) -> None:
        self.settings = settings
        self.services = services
        self.edge = edge
        self.stopping_at: float | None = None
        self.services_stopping = False
        self.code = 0

    @property
    def children(self) -> list[Child]:
        return [*self.services, self.edge]

    def stop(self, _signum: int = 0, _frame: object = None) -> None:
        if self.stopping_at is None:
            self.stopping_at = time.monotonic()
            log.info("stopping: the edge first, then the services")
        self.edge.signal(signal.SIGQUIT)

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(signum, self.stop)
        for child in self.children:
            child.start()
        log.info(
            "Herald is starting: the edge on http://%s:%d, %s",
            self.settings.host,
            self.settings.edge_port,
            ", ".join(c.name for c in self.services),
        )
        # The services get SIGTERM when nginx has stopped, or after its grace if it hangs; each
        # then has shutdown_timeout for requests in flight and some seconds for clean-up.
        grace = self.settings.shutdown_timeout + 15
        while any(c.running for c in self.children) or (
            self.stopping_at is None and any(c.restart_at is not None for c in self.children)
        ):
            now = time.monotonic()
            if self.stopping_at is None:
                self._watch(now)
            else:
                self._wind_down(now, grace)
            time.sleep(0.1)
        if self.code == 0:
            for child in self.children:
                if child.proc is not None and child.proc.returncode != 0:
                    log.error("%s exited with %s while stopping", child.name, child.proc.returncode)
                    self.code = 1
        return self.code

    def _watch(self, now: float) -> None:
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    log.info("starting %s again", child.name)
                    child.start()
                continue
            if child.running or child.proc is None:
                continue
            code = child.proc.returncode
            delay = child.died(now)
            if delay is None:
                log.error(
                    "%s exited with %s, the %dth quick death in a row; giving up: stopping the suite",
                    child.name,
                    code,
                    child.quick_deaths,
                )
                self.code = 1
                self.stop()
                return
            log.error("%s exited with %s; starting it again in %.1f s", child.name, code, delay)

    def _wind_down(self, now: float, grace: float) -> None:
        assert self.stopping_at is not None
        for child in self.children:
            child.restart_at = None
        if not self.services_stopping and (not self.edge.running or now > self.stopping_at + grace):
            self.services_stopping = True
            for child in self.services:
                child.signal(signal.SIGTERM)
        elif now > self.stopping_at + 2 * grace:
            for child in self.children:
                if child.running:
                    log.error("%s did not stop in time; killing it", child.name)
                    child.kill_group()
                    self.code = 1

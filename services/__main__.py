"""`python -m services`: the whole suite as plain processes (what `make run` starts).

Migrations run first, one service at a time; then auth, resource, webhook_delivery and the
gateway start. SIGINT or SIGTERM stops them all gracefully, the gateway first: it stops taking
requests and finishes those in flight while the services behind it still answer; then the
services drain in turn. If one dies, the rest are stopped. The exit status is 0 only when every
service exited 0."""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import sys
import time

from shared.config import Settings
from shared.logging import setup_logging

SERVICES = ("auth", "resource", "webhook_delivery", "gateway")
GATEWAY = "gateway"
BACKENDS = tuple(name for name in SERVICES if name != GATEWAY)
PR_SET_PDEATHSIG = 1
log = logging.getLogger("herald.suite")


def _die_with_parent() -> None:
    """In the child, before it runs: if this launcher dies (even by SIGKILL), the kernel sends
    the child SIGTERM, so no service is left running on its own (Linux only)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def main() -> int:
    settings = Settings.from_env()
    setup_logging("suite", settings.log_level)
    for name in SERVICES[:-1]:
        subprocess.run([sys.executable, "-m", f"services.{name}", "migrate"], check=True)
    # Each child in a session of its own: a Ctrl-C in the terminal reaches only this process,
    # which sends every child one SIGTERM (a second signal would cut their clean-up short).
    children = {
        name: subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"], start_new_session=True, preexec_fn=_die_with_parent
        )
        for name in SERVICES
    }
    deadline: float | None = None
    backends_at = float("inf")  # when the services get SIGTERM, even if the gateway hangs
    backends_stopping = False

    def signal_all(names: tuple[str, ...]) -> None:
        for name in names:
            if children[name].poll() is None:
                children[name].send_signal(signal.SIGTERM)

    def stop(signum: int, _frame: object) -> None:
        nonlocal deadline, backends_at
        if deadline is None:
            # The gateway, then the services: each gets shutdown_timeout for requests in flight,
            # then closes its pools and channels (up to 10 s).
            backends_at = time.monotonic() + settings.shutdown_timeout + 15
            deadline = backends_at + settings.shutdown_timeout + 15
        signal_all((GATEWAY,))

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, stop)
    log.info("Herald is starting: gateway on http://%s:%d", settings.host, settings.edge_port)
    code = 0
    while any(proc.poll() is None for proc in children.values()):
        if deadline is None:
            for name, proc in children.items():
                if proc.poll() is not None:
                    log.error("%s exited with %s; stopping the suite", name, proc.returncode)
                    code = 1
                    stop(signal.SIGTERM, None)
                    break
        elif not backends_stopping and (
            children[GATEWAY].poll() is not None or time.monotonic() > backends_at
        ):
            backends_stopping = True
            signal_all(BACKENDS)
        elif time.monotonic() > deadline:
            for name, proc in children.items():
                if proc.poll() is None:
                    log.error("%s did not stop in time; killing it", name)
                    proc.kill()
                    code = 1
        time.sleep(0.1)
    if code == 0:
        for name, proc in children.items():
            if proc.returncode != 0:
                log.error("%s exited with %s while stopping", name, proc.returncode)
                code = 1
    return code


if __name__ == "__main__":
    sys.exit(main())

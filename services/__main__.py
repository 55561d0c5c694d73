"""`python -m services`: the whole suite as plain processes (what `make run` starts).

Migrations run first, one service at a time; then auth, resource, webhook_delivery and the
gateway start. SIGINT or SIGTERM stops them all gracefully; if one dies, the rest are stopped."""

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

    def stop(signum: int, _frame: object) -> None:
        nonlocal deadline
        if deadline is None:
            # Requests in flight get shutdown_timeout, then pools and channels close (up to 10 s).
            deadline = time.monotonic() + settings.shutdown_timeout + 15
        for proc in children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, stop)
    log.info("Herald is starting: gateway on http://%s:%d", settings.host, settings.gateway_port)
    code = 0
    while any(proc.poll() is None for proc in children.values()):
        if deadline is None:
            for name, proc in children.items():
                if proc.poll() is not None:
                    log.error("%s exited with %s; stopping the suite", name, proc.returncode)
                    code = 1
                    stop(signal.SIGTERM, None)
                    break
        elif time.monotonic() > deadline:
            for name, proc in children.items():
                if proc.poll() is None:
                    log.error("%s did not stop in time; killing it", name)
                    proc.kill()
        time.sleep(0.2)
    return code


if __name__ == "__main__":
    sys.exit(main())

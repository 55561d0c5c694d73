"""Make sure the PostgreSQL and RabbitMQ that the settings name answer, starting this
machine's own when they are local and down; otherwise say clearly what is missing."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from shared.config import Settings

LOCAL = {"127.0.0.1", "localhost", "::1", ""}


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host or "127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def wait_for(host: str, port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if answers(host, port):
            return True
        time.sleep(0.5)
    return False


def start_postgresql() -> bool:
    if not shutil.which("pg_ctlcluster") or not os.path.isdir("/etc/postgresql"):
        return False
    for version in sorted(os.listdir("/etc/postgresql")):
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=False)
    return True


def start_rabbitmq() -> bool:
    if not shutil.which("rabbitmq-server"):
        return False
    subprocess.run(["rabbitmq-server", "-detached"], check=False)
    return True


def ensure(name: str, url: str, default_port: int, starter, wait_seconds: float) -> str | None:  # type: ignore[no-untyped-def]
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port
    if answers(host, port):
        return None
    if host in LOCAL and starter():
        print(f"{name} was down at {host}:{port}; started it, waiting...", flush=True)
        if wait_for(host, port, wait_seconds):
            return None
    return (
        f"{name} does not answer at {host}:{port}. Start it (or point the setting at one that "
        f"runs) and try again."
    )


def main() -> int:
    settings = Settings.from_env()
    problems = [
        p
        for p in (
            ensure("PostgreSQL (HERALD_DATABASE_URL)", settings.database_url, 5432, start_postgresql, 30),
            ensure("RabbitMQ (HERALD_AMQP_URL)", settings.amqp_url, 5672, start_rabbitmq, 90),
        )
        if p
    ]
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

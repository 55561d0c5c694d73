"""Closing AMQP connections from the broker's side (rabbitmqctl), as a broker restart or a
network cut would, and checking that they are really gone.

`rabbitmqctl list_connections --formatter json` prints pids as "#PID<a.b.c>", where `a` is
not the node's creation number that close_connection needs: a pid rebuilt from it names no
process, and close_connection still exits 0 having closed nothing. The plain output prints
the full pid ("<rabbit@host.creation.b.c>"); the JSON one the client properties (the
connection name). Both carry the client's port, which joins them."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Connection:
    pid: str  # as close_connection takes it
    peer_port: int  # the client's local port
    name: str | None  # the client's connection_name property


def _ctl(*args: str) -> str:
    return subprocess.run(
        ["rabbitmqctl", *args, "-q"], capture_output=True, text=True, timeout=60, check=True
    ).stdout


def connections() -> list[Connection]:
    named: dict[int, str | None] = {}
    for conn in json.loads(
        _ctl("list_connections", "peer_port", "client_properties", "--formatter", "json") or "[]"
    ):
        props = {p[0]: p[2] for p in conn.get("client_properties", [])}
        named[int(conn["peer_port"])] = props.get("connection_name")
    found = []
    for line in _ctl("list_connections", "pid", "peer_port").splitlines():
        parts = line.split("\t")
        if len(parts) == 2 and parts[0].startswith("<") and parts[1].isdigit():
            found.append(Connection(parts[0], int(parts[1]), named.get(int(parts[1]))))
    return found


def close_connections(name: str, only_ports: set[int] | None = None, wait: float | None = 30.0) -> int:
    """Close every connection called `name` (and from one of `only_ports`, when given); wait
    until the broker no longer lists them (not with `wait=None`: a client in the caller's own,
    now blocked, event loop could not answer the close until the broker gives up on it). How
    many were closed."""
    targets = [
        c for c in connections() if c.name == name and (only_ports is None or c.peer_port in only_ports)
    ]
    for conn in targets:
        _ctl("close_connection", conn.pid, "herald test: cut")
    pids = {c.pid for c in targets}
    if wait is None:
        return len(targets)
    deadline = time.monotonic() + wait
    while pids & {c.pid for c in connections()}:
        if time.monotonic() > deadline:
            raise RuntimeError(f"rabbitmqctl did not close {name}'s connections within {wait:g} s")
        time.sleep(0.2)
    return len(targets)

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
from typing import Any


@dataclass(frozen=True)
class Connection:
    pid: str  # as close_connection takes it
    peer_port: int  # the client's local port
    name: str | None  # the client's connection_name property


def _ctl(*args: str) -> str:
    return subprocess.run(
        ["rabbitmqctl", *args, "-q"], capture_output=True, text=True, timeout=60, check=True
    ).stdout


def _settled(conn: dict[str, Any]) -> bool:
    """Whether a listed connection shows its client port and its client properties as
    [key, type, value] triples: one still opening (or closing) may show them otherwise."""
    props = conn.get("client_properties")
    return (
        isinstance(conn.get("peer_port"), int)
        and isinstance(props, list)
        and all(isinstance(p, list) and len(p) == 3 for p in props)
    )


def _names(attempts: int = 50) -> dict[int, str | None]:
    """Each connection's client port and connection_name. A listing with a connection not
    `_settled` is asked for again (a busy broker lists half-open ones), never read by guess;
    still so after `attempts` listings: an error that shows it."""
    unsettled: list[dict[str, Any]] = []
    for _ in range(attempts):
        listed = json.loads(
            _ctl("list_connections", "peer_port", "client_properties", "--formatter", "json") or "[]"
        )
        unsettled = [conn for conn in listed if not _settled(conn)]
        if not unsettled:
            return {
                conn["peer_port"]: {p[0]: p[2] for p in conn["client_properties"]}.get("connection_name")
                for conn in listed
            }
        time.sleep(0.1)
    raise RuntimeError(f"rabbitmqctl kept listing connections without their properties: {unsettled!r}")


def connections() -> list[Connection]:
    named = _names()
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

"""Run docs/api-tour.md: its ```bash blocks, in order, in one bash, against a running suite.

    .venv/bin/python docs/api_tour.py [--base http://127.0.0.1:8080] [--show]

The document is the one source: each ```bash block is a step, and the block right under it (if
any) is the step's answer as a terminal shows it. A step passes when its answer is the one shown,
once ids, times, secrets, signatures and cursors are set aside and with only the headers the
document shows, and when every request it made got a 2xx or a status its answer shows. The
suite must have been started as the document says (its settings, a fresh database). `--show`
prints each step's answer instead of checking it, to paste into the document after a change.

tests/e2e/test_api_tour.py runs this against a suite of its own in `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

DOC = Path(__file__).resolve().with_name("api-tour.md")
ROOT = DOC.parents[1]
BASE = "http://127.0.0.1:8080"  # where the document's commands go
RECEIVER = re.compile(r"(?<=127\.0\.0\.1:)9000\b|(?<=127\.0\.0\.1/)9000\b|(?<=--port )9000\b")
FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```\n", re.MULTILINE | re.DOTALL)
ANSWER_KINDS = {"", "json", "http", "text"}
MARK = "@@herald-tour"
# Every curl of the tour also writes its status to stderr, in one write (stderr line-buffered:
# curl writes its -w text a character at a time) that may land next to a body `tee` printed.
PRELUDE = f"curl() {{ stdbuf -eL curl -w '%{{stderr}}\\n{MARK} status %{{http_code}}\\n' \"$@\"; }}\n"
STATUS_MARK = re.compile(rf"{MARK} status (\d{{3}})")
STATUS_LINE = re.compile(r"^HTTP/[\d.]+ (\d{3})\b")
HEADER = re.compile(r"^([A-Za-z0-9-]+): (.*)$")

# What differs from run to run. Keys whose values are the moment of the run; the rest by shape.
MOMENT_KEYS = {
    *("createdAt", "updatedAt", "at", "timestamp", "nextAttemptAt", "durationMs", "webhook-timestamp"),
    *("start", "p50Ms", "p95Ms"),  # the delivery statistics
}
VOLATILE = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
    (re.compile(r"whsec_[A-Za-z0-9+/=]+"), "<secret>"),
    (re.compile(r"cursor=[A-Za-z0-9_-]+"), "cursor=<cursor>"),
    (re.compile(r"webhook-timestamp=\d+"), "webhook-timestamp=<time>"),
    (re.compile(r"v1,[A-Za-z0-9+/=]+"), "v1,<signature>"),
]


class Step(NamedTuple):
    number: int
    script: str
    answer: str  # as the document shows it; "" when it shows none


def steps(text: str) -> list[Step]:
    """The document's ```bash blocks, each with the answer block that follows it directly."""
    found: list[Step] = []
    blocks = list(FENCE.finditer(text))
    for i, block in enumerate(blocks):
        if block[1] != "bash":
            continue
        answer = ""
        following = blocks[i + 1] if i + 1 < len(blocks) else None
        if following and following[1] in ANSWER_KINDS and not text[block.end() : following.start()].strip():
            answer = following[2]
        found.append(Step(len(found) + 1, block[2], answer))
    return found


def started_with(text: str) -> dict[str, str]:
    """The HERALD_* settings of the document's `make run` command."""
    command = next(block[2] for block in FENCE.finditer(text) if "make run" in block[2])
    return dict(re.findall(r"\b(HERALD_[A-Z0-9_]+)=(\S+)", command))


def _normal(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _normal(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    if key in MOMENT_KEYS and value is not None:
        return "<moment>"
    if isinstance(value, str):
        return _text(value)
    return value


def _text(line: str) -> str:
    for pattern, placeholder in VOLATILE:
        line = pattern.sub(placeholder, line)
    return line


def items(answer: str) -> list[tuple[Any, ...]]:
    """An answer as comparable items: status lines, headers, JSON values and other lines."""
    found: list[tuple[Any, ...]] = []
    in_head = False
    for raw in answer.replace("\r", "").splitlines():
        line = raw.strip()
        if not line:
            in_head = False
            continue
        if STATUS_LINE.match(line):
            in_head = True
            found.append(("status", line))
        elif in_head and (header := HEADER.match(line)):
            found.append(("header", header[1].lower(), _text(header[2])))
        else:
            try:
                found.append(("json", _normal(json.loads(line))))
            except ValueError:
                found.append(("text", _text(line)))
    return found


def check(step: Step, printed: str, statuses: list[int]) -> list[str]:
    """What is wrong with a step's answer; nothing when it is the one shown."""
    shown = items(step.answer)
    names = {item[1] for item in shown if item[0] == "header"}
    got = [item for item in items(printed) if item[0] != "header" or item[1] in names]
    problems = []
    if got != shown:
        problems.append(f"answer differs:\n  shown: {shown}\n  got:   {got}")
    allowed = {int(m[1]) for item in shown if item[0] == "status" and (m := STATUS_LINE.match(item[1]))}
    wrong = [s for s in statuses if not 200 <= s < 300 and s not in allowed]
    if wrong:
        problems.append(f"statuses {statuses}: {wrong} neither 2xx nor shown")
    return problems


def script_for(tour: list[Step], base: str, receiver_port: int) -> str:
    parts = [PRELUDE]
    for step in tour:
        parts.append(f"printf '\\n{MARK} step {step.number}\\n'\n{step.script}")
    parts.append(f"printf '\\n{MARK} end\\n'\n")
    script = "".join(parts)
    script, moved = RECEIVER.subn(str(receiver_port), script.replace(BASE, base.rstrip("/")))
    if base.rstrip("/") != BASE:
        assert BASE not in script, "a command still goes to the default port"
    assert moved, "the receiver's port was not found in the document"
    return script


def _workdir(where: Path) -> None:
    """`.venv/bin/python deploy/dev/...`, as in the document, from a directory of the run's own
    (the receiver's log lands there): this Python, the repository's deploy/."""
    python = where / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    (where / "deploy").symlink_to(ROOT / "deploy")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(base: str, where: Path, timeout: float = 300) -> list[tuple[Step, str, list[int]]]:
    """Run the tour in one bash from `where`; each step with what it printed and its statuses."""
    tour = steps(DOC.read_text(encoding="utf-8"))
    _workdir(where)
    receiver_port = free_port()
    proc = subprocess.Popen(
        ["bash", "--noprofile", "--norc", "-c", script_for(tour, base, receiver_port)],
        cwd=where,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # the receiver it starts goes with it
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    printed: dict[int, list[str]] = {}
    statuses: dict[int, list[int]] = {}
    current = 0
    # Answers name the addresses the document names (a subscription's URL, say).
    text = out.decode(errors="replace").replace(base.rstrip("/"), BASE)
    text = text.replace(f"127.0.0.1:{receiver_port}", "127.0.0.1:9000")
    for line in text.splitlines():
        statuses.setdefault(current, []).extend(int(code) for code in STATUS_MARK.findall(line))
        line = STATUS_MARK.sub("", line)
        if line.startswith(f"{MARK} step "):
            current = int(line.rsplit(" ", 1)[1])
        elif line.startswith(f"{MARK} end"):
            current = -1
        else:
            printed.setdefault(current, []).append(line)
    if current != -1:
        raise AssertionError(f"the tour stopped in step {current}:\n" + "\n".join(printed.get(current, [])))
    return [(step, "\n".join(printed.get(step.number, [])), statuses.get(step.number, [])) for step in tour]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default=BASE, help="the edge of a running suite")
    parser.add_argument("--show", action="store_true", help="print each step's answer, check nothing")
    args = parser.parse_args()
    failed = 0
    with tempfile.TemporaryDirectory(prefix="herald-tour-") as where:
        for step, printed, statuses in run(args.base, Path(where)):
            first = step.script.strip().splitlines()[0]
            if args.show:
                print(f"--- step {step.number}: {first}  {statuses}\n{printed.strip()}\n")
                continue
            problems = check(step, printed, statuses)
            failed += bool(problems)
            print(f"step {step.number}: {'FAILED' if problems else 'ok'}  {first}")
            for problem in problems:
                print("  " + problem)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

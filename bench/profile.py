"""Where the CPU goes under a benchmark's load: py-spy samples the named service processes while
the load runs, and the top frames (self and inclusive share of the samples) are written to
bench/results/profile-<scenario>-<timestamp>.txt.

    python bench/profile.py get         GET /v2/event/{id} via the gateway (gateway, resource)
    python bench/profile.py create      POST /v2/event/list via the gateway (gateway, resource)
    python bench/profile.py deliveries  one worker process draining pre-loaded deliveries
"""

from __future__ import annotations

import asyncio
import collections
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import ROOT, free_ports, running_suite, wrk
from bench.run import (
    CONCURRENCY,
    EVENT,
    SUBSCRIPTIONS,
    _outbox_empty,
    create_event,
    create_many,
    get_json,
    process,
    start_worker,
    stop,
    wait_for,
    wait_ready,
)

SECONDS = 10
TOP = 30
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def spy(pid: int, seconds: int, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "py-spy"),
            "record",
            "-p",
            str(pid),
            "-d",
            str(seconds),
            "-r",
            "200",
            "-f",
            "raw",
            "-o",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def top_frames(raw: str, limit: int = TOP) -> str:
    """The functions with the most samples on top of the stack (self) and anywhere in it."""
    own: collections.Counter[str] = collections.Counter()
    anywhere: collections.Counter[str] = collections.Counter()
    by_part: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_short(f) for f in stack.split(";")]
        own[frames[-1]] += n
        # The innermost frame of a known library names the sample's part: the asyncio stream
        # write that aiormq calls is the AMQP client's cost.
        by_part[next((p for p in map(_part, reversed(frames)) if p != OTHER), OTHER)] += n
        for frame in set(frames):
            anywhere[frame] += n
    if not total:
        return "no samples\n"
    lines = [f"{total} samples", "", "   %    by part (the innermost library frame of each sample)"]
    lines += [f"{100 * n / total:6.1f}  {part}" for part, n in by_part.most_common()]
    lines += ["", "self %  function"]
    lines += [f"{100 * n / total:6.1f}  {f}" for f, n in own.most_common(limit)]
    lines += ["", "incl %  function"]
    lines += [f"{100 * n / total:6.1f}  {f}" for f, n in anywhere.most_common(limit)]
    return "\n".join(lines) + "\n"


OTHER = "asyncio, event loop, other"
PARTS = (
    ("AMQP client (aio-pika, aiormq, pamqp)", ("aio_pika/", "aiormq/", "pamqp/")),
    ("PostgreSQL client (asyncpg)", ("asyncpg/",)),
    ("HTTP (aiohttp, yarl, multidict)", ("aiohttp/", "yarl/", "multidict/")),
    ("JSON Schema (jsonschema)", ("jsonschema/",)),
    ("metrics (prometheus_client)", ("prometheus_client/",)),
    ("Herald's own code", ("services/", "shared/")),
)


def _part(frame: str) -> str:
    """Which library a frame belongs to (the event loop and the rest: "asyncio, other")."""
    for part, markers in PARTS:
        if any(f"({marker}" in frame for marker in markers):
            return part
    return OTHER


def _short(frame: str) -> str:
    m = FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m["file"]
    for marker in ("site-packages/", "/lib/python3.11/", str(ROOT) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m['func']} ({path})"


async def profile(scenario: str) -> dict[str, str]:
    raws: dict[str, Path] = {}
    tmp = Path(tempfile.mkdtemp(prefix="herald-profile-"))
    (receiver_port,) = free_ports(1)
    receiver = f"http://127.0.0.1:{receiver_port}"
    env = {"HERALD_WEBHOOK_WORKER": "false", "HERALD_WEBHOOK_ALLOW_PRIVATE": "true"}
    with process(["bench/receiver.py", str(receiver_port)]):
        async with running_suite(None, **env) as suite:
            await wait_ready(receiver + "/stats")
            headers = {"Authorization": f"Bearer {suite.token}"}
            connector = aiohttp.TCPConnector(limit=CONCURRENCY)
            async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
                pids = suite.pids()
                if scenario in ("get", "create"):
                    event_id = await create_event(session, suite.base)
                    spies = []
                    # The Python processes of the path (no gateway behind nginx; nginx is C).
                    for name in (n for n in ("gateway", "resource") if n in pids):
                        raws[name] = tmp / f"{name}.txt"
                        spies.append(spy(pids[name], SECONDS, raws[name]))
                    if scenario == "get":
                        url = f"{suite.base}/v2/event/{event_id}"
                        print(wrk(url, suite.token, SECONDS))
                    else:
                        url = f"{suite.base}/v2/event/list"
                        print(wrk(url, suite.token, SECONDS, body=orjson.dumps(EVENT)))
                    for s in spies:
                        s.wait(30)
                else:
                    for n in range(SUBSCRIPTIONS):
                        sub = {"url": f"{receiver}/hook/{n}", "topics": ["event.created"]}
                        async with session.post(f"{suite.base}/v2/subscription/list", json=sub) as resp:
                            assert resp.status == 201, await resp.text()
                    worker, url = start_worker(suite)  # declares the queues, then goes
                    await wait_ready(url + "/readyz")
                    stop(worker)
                    created = await create_many(session, suite.base, 3000)
                    await wait_for(lambda: _outbox_empty(suite), 90, "the relay")
                    worker, url = start_worker(suite)
                    try:
                        await wait_ready(url + "/readyz")
                        raws["webhook_worker"] = tmp / "worker.txt"
                        spied = spy(worker.pid, SECONDS, raws["webhook_worker"])
                        started = time.monotonic()
                        spied.wait(30)
                        stats = await get_json(session, receiver + "/stats")
                        print(
                            f"{stats['unique']} of {created * SUBSCRIPTIONS} delivered;"
                            f" {time.monotonic() - started:.1f} s profiled"
                        )
                    finally:
                        stop(worker)
    return {name: top_frames(path.read_text()) for name, path in raws.items() if path.exists()}


def main() -> None:
    scenario = sys.argv[1] if len(sys.argv) > 1 else "get"
    if scenario not in ("get", "create", "deliveries"):
        sys.exit(__doc__)
    reports = asyncio.run(profile(scenario))
    out = ROOT / "bench" / "results" / f"profile-{scenario}-{time.strftime('%Y%m%dT%H%M%S')}.txt"
    text = "".join(f"== {name} ==\n{report}\n" for name, report in reports.items())
    out.write_text(text)
    print(text)
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

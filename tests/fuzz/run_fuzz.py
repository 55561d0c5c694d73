"""The fuzz suite: schemathesis over the merged /v2/openapi.json with a valid token, every
operation, against the suite started as `make run` starts it (processes, real PostgreSQL and
RabbitMQ). Passes when no response is a 5xx and every response matches the document.

    python tests/fuzz/run_fuzz.py [max examples per operation, default 30] [operation id regex]

Besides what the document says, each operation meets edge values (tests/fuzz/hooks.py): times
outside years 1 to 9999 once in UTC, integers past 64 bits, cursors carrying them. The optional
regex runs only the operations whose id matches (a quick look at a few).

Two runs: every operation except the ones that change users, with an admin's token; then the
user-changing operations with a second admin's token (they may revoke the token they run
with, which would leave the first run with nothing but 401s). Prints the counts of each.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.harness import running_suite  # noqa: E402

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    )
)
USER_CHANGES = "^(replaceUser|patchUser|deleteUser|patchMe)$"
HOOKS = Path(__file__).with_name("hooks.py")


async def known_ids(base: str, token: str) -> dict[str, str]:
    """An event, a location and a subscription (to a closed port on this machine), for
    hooks.py to give the operations on one resource."""
    made = {}
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        for name, path, body in (
            ("LOCATION", "/v2/location/list", {"name": "Fuzz hall"}),
            (
                "EVENT",
                "/v2/event/list",
                {"title": "Fuzz", "startsAt": "2030-01-01T00:00:00Z", "endsAt": "2030-01-01T01:00:00Z"},
            ),
            ("SUBSCRIPTION", "/v2/subscription/list", {"url": "http://127.0.0.1:9/fuzz", "topics": ["*"]}),
        ):
            async with session.post(f"{base}{path}", json=body) as resp:
                assert resp.status == 201, await resp.text()
                made[f"HERALD_FUZZ_{name}_ID"] = str((await resp.json())["id"])
    return made


async def second_admin(base: str, token: str) -> str:
    email, password = f"fuzz-{uuid.uuid4().hex[:8]}@test.local", "fuzz-admin-password"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        user = {"email": email, "password": password, "roles": ["admin"]}
        async with session.post(f"{base}/v2/user/list", json=user) as resp:
            assert resp.status == 201, await resp.text()
        async with session.post(
            f"{base}/v2/requesttoken", json={"email": email, "password": password}
        ) as resp:
            return str(await resp.json())


def schemathesis(
    base: str, token: str, examples: int, selection: list[str], ids: dict[str, str]
) -> tuple[int, str]:
    cmd = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{base}/v2/openapi.json",
        "-H",
        f"Authorization: Bearer {token}",
        "--checks",
        CHECKS,
        "--max-examples",
        str(examples),
        # One worker: with two threads, hypothesis's ast.parse trips CPython 3.11's
        # "AST constructor recursion depth mismatch" (fixed in 3.11.8 and 3.12).
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--seed",
        "20261127",
        *selection,
    ]
    env = {**os.environ, **ids, "SCHEMATHESIS_HOOKS": str(HOOKS)}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, check=False, env=env)
    return done.returncode, done.stdout + done.stderr


def summary(output: str) -> str:
    cases = re.search(r"Test cases:\s*\n\s*(.+)", output)
    operations = re.search(r"Tested: (\d+)", output)
    return (
        f"{operations.group(1) if operations else '?'} operations, {cases.group(1).strip() if cases else '?'}"
    )


async def whole_document(base: str) -> None:
    """The docs service merges the services' fragments as they answer: wait until all have."""
    async with aiohttp.ClientSession() as session:
        for _ in range(120):
            async with session.get(f"{base}/v2/openapi.json") as resp:
                paths = (await resp.json())["paths"] if resp.status == 200 else {}
            if {"/v2/user/me", "/v2/event/list", "/v2/subscription/list"} <= set(paths):
                return
            await asyncio.sleep(1)
    raise RuntimeError("/v2/openapi.json never covered every service")


async def main(examples: int, only: str | None = None) -> int:
    async with running_suite(HERALD_WEBHOOK_ALLOW_PRIVATE="true") as suite:
        await whole_document(suite.base)
        other = await second_admin(suite.base, suite.token)
        ids = await known_ids(suite.base, suite.token)
        runs = [
            ("every operation but user changes", suite.token, ["--exclude-operation-id-regex", USER_CHANGES]),
            ("user changes, with a second admin", other, ["--include-operation-id-regex", USER_CHANGES]),
        ]
        if only is not None:
            runs = [(f"operations matching {only}", suite.token, ["--include-operation-id-regex", only])]
        outcomes = [
            (name, *schemathesis(suite.base, token, examples, selection, ids))
            for name, token, selection in runs
        ]
    for name, code, output in outcomes:
        print(f"{name}: {summary(output)} -> {'passed' if code == 0 else 'FAILED'}")
        if code != 0:
            print(output[-20000:])
    return 0 if all(code == 0 for _, code, _ in outcomes) else 1


if __name__ == "__main__":
    sys.exit(
        asyncio.run(
            main(int(sys.argv[1]) if len(sys.argv) > 1 else 30, sys.argv[2] if len(sys.argv) > 2 else None)
        )
    )

"""Whether a failed login takes as long for an unknown email as for a wrong password (else the
time of the answer tells which emails have accounts): the median of BENCH_LOGINS attempts of
each, alternated, against a suite started for the purpose, and their ratio.

The tests check what makes them equal (one argon2 verification of the same cost either way);
how long they take is measured here, on a quiet machine."""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import running_suite  # noqa: E402


async def measure(count: int) -> dict[str, float]:
    async with running_suite() as suite, aiohttp.ClientSession() as session:
        email = f"timing-{uuid.uuid4().hex[:8]}@bench.local"
        user = {"email": email, "password": "timing-password-1", "name": "Timing", "roles": ["member"]}
        headers = {"Authorization": f"Bearer {suite.token}"}
        async with session.post(suite.base + "/v2/user/list", json=user, headers=headers) as resp:
            assert resp.status == 201, await resp.text()
        cases = {
            "unknown_email": {"email": f"nobody-{uuid.uuid4().hex}@bench.local", "password": "whatever-1"},
            "wrong_password": {"email": email, "password": "wrong-password"},
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(count):
            for name, body in cases.items():
                started = time.perf_counter()
                async with session.post(suite.base + "/v2/requesttoken", json=body) as resp:
                    await resp.read()
                    assert resp.status == 401, resp.status
                times[name].append(time.perf_counter() - started)
    medians = {f"{name}_ms": round(statistics.median(t) * 1000, 2) for name, t in times.items()}
    slow, fast = max(medians.values()), min(medians.values())
    return {**medians, "ratio": round(slow / fast, 2)}


def main() -> None:
    result = asyncio.run(measure(int(os.environ.get("BENCH_LOGINS", "20"))))
    print("| failed login | median ms |")
    print("|---|---:|")
    print(f"| unknown email | {result['unknown_email_ms']} |")
    print(f"| wrong password | {result['wrong_password_ms']} |")
    print(f"\nslower / faster: {result['ratio']} (about 1 when neither gives the email away)")


if __name__ == "__main__":
    main()

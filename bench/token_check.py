"""What a token check costs: verifications per second, cold (RSA signature checked) and
cached (a dictionary look-up), in one process; then, when wrk is installed, an authenticated
request through the gateway of the running suite.

Writes bench/results/token-check-<timestamp>.json and prints a Markdown table."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import running_suite, wrk  # noqa: E402
from shared.verifier import Credentials, TokenVerifier  # noqa: E402

ISS, AUD = "herald", "herald-api"


def _tokens(key: rsa.RSAPrivateKey, count: int) -> list[str]:
    now = int(time.time())
    return [
        jwt.encode(
            {
                "iss": ISS,
                "aud": AUD,
                "sub": f"user-{i % 100}",
                "email": "b@x.io",
                "roles": ["member"],
                "cv": 1,
                "iat": now,
                "nbf": now,
                "exp": now + 3600,
                "jti": str(uuid.uuid4()),
            },
            key,
            algorithm="RS256",
            headers={"kid": "bench"},
        )
        for i in range(count)
    ]


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1)


async def micro(count: int) -> dict[str, float]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**json.loads(RSAAlgorithm.to_jwk(key.public_key())), "kid": "bench"}

    async def fetch_jwks() -> dict[str, Any]:
        return {"keys": [jwk]}

    async def fetch_cv(user_id: str) -> Credentials:
        return Credentials(cv=1, active=True)

    tokens = _tokens(key, count)
    public = key.public_key()
    started = time.perf_counter()
    for token in tokens:
        jwt.decode(token, public, algorithms=["RS256"], audience=AUD, issuer=ISS)
    raw = time.perf_counter() - started

    verifier = TokenVerifier(
        issuer=ISS, audience=AUD, fetch_jwks=fetch_jwks, fetch_cv=fetch_cv, max_cached_tokens=count * 2
    )
    await verifier.verify(tokens[0])  # keys and versions fetched once, outside the timing
    verifier._tokens.clear()
    started = time.perf_counter()
    for token in tokens:
        await verifier.verify(token)
    cold = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(10):
        for token in tokens:
            await verifier.verify(token)
    cached = time.perf_counter() - started
    return {
        "pyjwt_rs256_decode_per_s": _rate(count, raw),
        "verifier_cold_per_s": _rate(count, cold),
        "verifier_cached_per_s": _rate(count * 10, cached),
        "verifier_cold_us": round(cold / count * 1e6, 1),
        "verifier_cached_us": round(cached / (count * 10) * 1e6, 2),
    }


async def through_gateway(seconds: int) -> dict[str, Any]:
    if not shutil.which("wrk"):
        return {"skipped": "wrk is not installed (apt-get install wrk)"}
    async with running_suite() as suite:
        base, token = suite.base, suite.token
        return {
            "gateway_healthz_no_token": wrk(base + "/healthz", None, seconds),
            "gateway_to_resource_404_with_token": wrk(base + "/v2/nothing/here", token, seconds),
            "gateway_user_me_with_token": wrk(base + "/v2/user/me", token, seconds),
            "direct_auth_user_me_with_token": wrk(
                f"http://127.0.0.1:{suite.ports['auth']}/v2/user/me", token, seconds
            ),
        }


def main() -> None:
    count = int(os.environ.get("BENCH_TOKENS", "2000"))
    seconds = int(os.environ.get("BENCH_SECONDS", "5"))
    results: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }
    results["micro"] = asyncio.run(micro(count))
    results["http"] = asyncio.run(through_gateway(seconds))
    out = ROOT / "bench" / "results" / f"token-check-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    m = results["micro"]
    print("| token check, one process | per second | per check |")
    print("|---|---:|---:|")
    print(f"| PyJWT RS256 decode | {m['pyjwt_rs256_decode_per_s']:,.0f} | |")
    print(
        f"| verifier, cold (signature checked) | {m['verifier_cold_per_s']:,.0f} | {m['verifier_cold_us']} µs |"
    )
    print(f"| verifier, cached | {m['verifier_cached_per_s']:,.0f} | {m['verifier_cached_us']} µs |")
    if "skipped" not in results["http"]:
        print()
        print("| HTTP, wrk -t2 -c64 | req/s | p50 ms | p99 ms | non-2xx |")
        print("|---|---:|---:|---:|---:|")
        for name, r in results["http"].items():
            print(f"| {name} | {r['req_per_s']:,} | {r['p50_ms']} | {r['p99_ms']} | {r['non_2xx']} |")
    else:
        print(f"\nHTTP: {results['http']['skipped']}")
    print(f"\nwritten to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

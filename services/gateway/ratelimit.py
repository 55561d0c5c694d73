"""Token buckets in this process's memory: per client address on /v2/requesttoken, per user
elsewhere. Each gateway process counts on its own (the README says so)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from services.gateway.routes import REQUESTTOKEN_PATH
from shared.authn import PRINCIPAL
from shared.http import client_address
from shared.problems import Problem

RATE_HEADERS = web.RequestKey("rate_headers", dict[str, str])


@dataclass(slots=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset: int
    retry_after: int


class TokenBuckets:
    """`rate` tokens a second up to `burst`; one request takes one token."""

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, list[float]] = {}  # key -> [tokens, last refill time]

    def take(self, key: str, now: float | None = None) -> Verdict:
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._prune(now)
            bucket = self._buckets[key] = [float(self.burst), now]
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        allowed = tokens >= 1
        if allowed:
            tokens -= 1
        bucket[0] = tokens
        return Verdict(
            allowed=allowed,
            limit=self.burst,
            remaining=int(tokens),
            reset=math.ceil((self.burst - tokens) / self.rate),
            retry_after=0 if allowed else math.ceil((1 - tokens) / self.rate),
        )

    def _prune(self, now: float) -> None:
        """Forget buckets that have refilled: they hold no information."""
        full = [
            k
            for k, (tokens, last) in self._buckets.items()
            if tokens + (now - last) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]
        while len(self._buckets) >= self.max_keys:
            del self._buckets[next(iter(self._buckets))]


def ratelimit_middleware(
    login: TokenBuckets | None, users: TokenBuckets | None, trusted: tuple[Any, ...]
) -> Any:
    @web.middleware
    async def ratelimit(request: web.Request, handler: Any) -> web.StreamResponse:
        verdict = None
        if request.path == REQUESTTOKEN_PATH:
            if login is not None:
                verdict = login.take(client_address(request, trusted))
        elif users is not None and PRINCIPAL in request:
            verdict = users.take(request[PRINCIPAL].user_id)
        if verdict is None:
            return await handler(request)
        headers = {
            "RateLimit-Limit": str(verdict.limit),
            "RateLimit-Remaining": str(verdict.remaining),
            "RateLimit-Reset": str(verdict.reset),
        }
        if not verdict.allowed:
            headers["Retry-After"] = str(verdict.retry_after)
            raise Problem(429, "too many requests; slow down", headers=headers)
        request[RATE_HEADERS] = headers
        return await handler(request)

    return ratelimit


async def add_rate_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Response-prepare hook: streamed proxy answers get the headers too."""
    headers = request.get(RATE_HEADERS)
    if headers:
        response.headers.update(headers)

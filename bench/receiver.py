"""A fast local webhook receiver for the benchmark, in a process of its own (so that it neither
slows the load loop nor is slowed by it). It answers every POST /hook/{n} with 200 at once and
remembers when each (subscription, webhook-id) first arrived, on CLOCK_MONOTONIC, which every
process of the machine shares: the load loop compares it with its own send times.

    python bench/receiver.py PORT

GET /stats: counts and the first and last arrival; GET /arrivals: [n, event data id, arrival]
of each first arrival; POST /reset: forget everything (`?fail_first=1`: from then on answer
each (subscription, webhook-id)'s first arrival with 500, to make every delivery retry once;
with `&hooks=0,3` only those subscriptions' first arrivals fail).
"""

from __future__ import annotations

import sys
import time

import orjson
import uvloop
from aiohttp import web

OK = b"ok"
FAILED = b"failing the first attempt"


class Arrivals:
    def __init__(self) -> None:
        self.reset()

    def reset(self, fail_first: bool = False, hooks: frozenset[str] | None = None) -> None:
        self.fail_first = fail_first
        self.failing_hooks = hooks  # None: every subscription's
        self.requests = 0
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.seen: set[tuple[str, str]] = set()
        self.firsts: list[tuple[str, str, float]] = []

    async def hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        now = time.monotonic()
        self.requests += 1
        key = (request.match_info["n"], request.headers.get("webhook-id", ""))
        if key not in self.seen:
            self.seen.add(key)
            if self.first_at is None:
                self.first_at = now
            self.last_at = now
            # The resource's id: what the load loop knows when its create request returns.
            data_id = orjson.loads(body).get("data", {}).get("id", "")
            self.firsts.append((key[0], data_id, now))
            if self.fail_first and (self.failing_hooks is None or key[0] in self.failing_hooks):
                return web.Response(status=500, body=FAILED)
        return web.Response(body=OK)

    async def stats(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {
                "requests": self.requests,
                "unique": len(self.seen),
                "first_at": self.first_at,
                "last_at": self.last_at,
            },
            dumps=lambda v: orjson.dumps(v).decode(),
        )

    async def arrivals(self, _request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(self.firsts), content_type="application/json")

    async def clear(self, request: web.Request) -> web.Response:
        hooks = request.query.get("hooks")
        self.reset(
            fail_first=request.query.get("fail_first") == "1",
            hooks=frozenset(hooks.split(",")) if hooks else None,
        )
        return web.Response(status=204)


def receiver_app() -> web.Application:
    arrivals = Arrivals()
    app = web.Application()
    app.router.add_post("/hook/{n}", arrivals.hook)
    app.router.add_get("/stats", arrivals.stats)
    app.router.add_get("/arrivals", arrivals.arrivals)
    app.router.add_post("/reset", arrivals.clear)
    return app


if __name__ == "__main__":
    uvloop.install()
    web.run_app(receiver_app(), host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)

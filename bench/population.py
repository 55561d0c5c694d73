"""What the read benchmarks read: accounts other than the admin, and events, either COPY-seeded
by `bench.seed_events` (fast enough for a million) or, without that module, made through the
public API (fine for a thousand)."""

from __future__ import annotations

import asyncio
import importlib
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from bench.harness import RunningSuite

PASSWORD = f"bench-{uuid.uuid4().hex}"  # each run its own
API_BATCH = 100  # the most events one POST may create


def seeder() -> Callable[..., Awaitable[Any]] | None:
    """`bench.seed_events.seed_events(dsn, count)`, or None when that module is missing."""
    try:
        module = importlib.import_module("bench.seed_events")
    except ModuleNotFoundError as missing:
        if missing.name != "bench.seed_events":
            raise  # the module is there but something it needs is not: say so
        return None
    return module.seed_events


async def add_user(suite: RunningSuite, role: str) -> str:
    """A new account with this one role, created by the admin; returns its token."""
    account = {"email": f"bench-{role}-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD}
    admin = {"Authorization": f"Bearer {suite.token}"}
    async with aiohttp.ClientSession() as session:
        body = {**account, "name": f"Bench {role}", "roles": [role]}
        async with session.post(f"{suite.base}/v2/user/list", json=body, headers=admin) as resp:
            if resp.status != 201:
                raise RuntimeError(f"creating a {role}: {resp.status} {await resp.text()}")
        async with session.post(f"{suite.base}/v2/requesttoken", json=account) as resp:
            if resp.status != 200:
                raise RuntimeError(f"a {role}'s token: {resp.status} {await resp.text()}")
            return str(await resp.json())


async def create_events(suite: RunningSuite, count: int, event: dict[str, Any]) -> list[str]:
    """`count` copies of `event`, the admin's drafts, made through the API; returns their ids."""
    admin = {"Authorization": f"Bearer {suite.token}"}
    ids: list[str] = []
    async with aiohttp.ClientSession(headers=admin) as session:
        for start in range(0, count, API_BATCH):
            batch = [event] * min(API_BATCH, count - start)
            async with session.post(f"{suite.base}/v2/event/list", json=batch) as resp:
                if resp.status != 201:
                    raise RuntimeError(f"creating events: {resp.status} {await resp.text()}")
                ids += [item["id"] for item in await resp.json()]
    return ids


async def populate(suite: RunningSuite, count: int, event: dict[str, Any], approved: float = 0.9) -> str:
    """`count` more events; returns how they were made. Seeded: as `seed_events` makes them.
    Through the API: the admin's, `approved` of them submitted and approved by an approver (so
    that a member's list holds others' events and skips others' drafts), the rest drafts."""
    seed = seeder()
    if seed is not None:
        await seed(suite.env["HERALD_DATABASE_URL"], count)
        return f"bench.seed_events.seed_events (COPY), {count:,} events"
    ids = await create_events(suite, count, event)
    admin = {"Authorization": f"Bearer {suite.token}"}
    approver = {"Authorization": f"Bearer {await add_user(suite, 'approver')}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16)) as session:

        async def step(event_id: str, name: str, headers: dict[str, str]) -> None:
            async with session.post(f"{suite.base}/v2/event/{event_id}/{name}", headers=headers) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"{name}: {resp.status} {await resp.text()}")

        async def approve(event_id: str) -> None:
            await step(event_id, "submit", admin)
            await step(event_id, "approve", approver)

        await asyncio.gather(*(approve(event_id) for event_id in ids[: round(count * approved)]))
    return f"the API: {count:,} events, {approved:.0%} of them approved, the rest the admin's drafts"

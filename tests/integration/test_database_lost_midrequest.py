"""A request whose database connection dies under it (pg_terminate_backend, a failover, a
restart) is a 503 with Retry-After, not a 500, and writes nothing: its transaction never
committed. In each service: the test holds a row lock, the request waits on it inside its
transaction, and the test terminates the backend the request is waiting on."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from shared.config import Settings
from tests.conftest import Suite, make_settings
from tests.factories import new_event, new_subscription

pytestmark = pytest.mark.timeout(60)
MERGE = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture
def settings(database_url: str, amqp_prefix: str, signing_pem: str) -> Settings:
    """Subscriptions here point at a closed port on this machine: whatever events other tests
    fan out to them never leave it."""
    return make_settings(database_url, amqp_prefix, signing_pem, webhook_allow_private=True)


async def _connect(suite: Suite) -> asyncpg.Connection:
    return await asyncpg.connect(suite.settings.database_url)


async def _terminate_the_waiting_backend(admin: asyncpg.Connection, service: str) -> None:
    """Once the service's backend waits on the test's lock, terminate it (and only it)."""
    database = admin._params.database  # type: ignore[attr-defined]
    for _ in range(400):  # 20 s: the request has not reached the lock yet on a busy machine
        pid = await admin.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = $2"
            " AND wait_event_type = 'Lock'",
            database,
            f"herald-{service}",
        )
        if pid is not None:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no backend of {service} ever waited on the lock")


async def _lost_midway(
    suite: Suite, service: str, lock_sql: str, row_id: uuid.UUID, request: Callable[[], Awaitable[Any]]
) -> tuple[Any, Any]:
    admin = await _connect(suite)
    try:
        locker = await _connect(suite)
        try:
            async with locker.transaction():
                await locker.execute(lock_sql, row_id)
                call = asyncio.ensure_future(request())
                await _terminate_the_waiting_backend(admin, service)
                resp, problem = await asyncio.wait_for(call, 20)
        finally:
            await locker.close()
    finally:
        await admin.close()
    return resp, problem


def _assert_503(resp: Any, problem: Any) -> None:
    assert resp.status == 503, problem
    assert resp.content_type == "application/problem+json"
    assert int(resp.headers["Retry-After"]) >= 1
    assert problem["status"] == 503 and "database" in problem["detail"], problem


async def test_resource_edit_and_transition(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    event = await new_event(suite, token)
    path = f"/v2/event/{event['id']}"
    lock = "SELECT 1 FROM resource.resources WHERE id = $1 FOR UPDATE"
    for request in (
        lambda: suite.request("PATCH", path, token=token, json={"title": "lost"}, headers=MERGE),
        lambda: suite.request("POST", f"{path}/submit", token=token),
    ):
        resp, problem = await _lost_midway(suite, "resource", lock, uuid.UUID(event["id"]), request)
        _assert_503(resp, problem)
    resp, current = await suite.request("GET", path, token=token)
    assert current["version"] == 1 and current["title"] == event["title"] and current["status"] == "draft"
    conn = await _connect(suite)
    try:
        history = await conn.fetchval(
            "SELECT count(*) FROM resource.history WHERE resource_id = $1", uuid.UUID(event["id"])
        )
        events = await conn.fetchval(
            "SELECT count(*) FROM resource.outbox WHERE convert_from(body, 'UTF8')::jsonb -> 'data' ->> 'id' = $1",
            event["id"],
        )
    finally:
        await conn.close()
    assert history == 0 and events == 1  # event.created only
    # The service carries on with fresh connections.
    resp, changed = await suite.request("PATCH", path, token=token, json={"title": "after"}, headers=MERGE)
    assert resp.status == 200 and changed["version"] == 2


async def _patch_lost_midway(suite: Suite, token: str, table: str, path: str, change: dict[str, Any]) -> Any:
    """PATCH `path` (its id last) while the row of `table` (schema.table) is locked, and lose
    the database connection midway: a 503. What GET `path` shows afterwards."""
    resp, problem = await _lost_midway(
        suite,
        table.split(".")[0],
        f"SELECT 1 FROM {table} WHERE id = $1 FOR UPDATE",
        uuid.UUID(path.rsplit("/", 1)[1]),
        lambda: suite.request("PATCH", path, token=token, json=change, headers=MERGE),
    )
    _assert_503(resp, problem)
    _, current = await suite.request("GET", path, token=token)
    return current


async def test_webhook_subscription_change(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    sub = await new_subscription(suite, token, description="before")
    current = await _patch_lost_midway(
        suite,
        token,
        "webhook_delivery.subscriptions",
        f"/v2/subscription/{sub['id']}",
        {"description": "lost"},
    )
    assert current["description"] == "before" and current["version"] == sub["version"]


async def test_auth_user_change(suite: Suite) -> None:
    user, _, _ = await suite.new_user()
    admin = await suite.admin_token()
    current = await _patch_lost_midway(suite, admin, "auth.users", f"/v2/user/{user['id']}", {"name": "lost"})
    assert current["name"] == user["name"] and current["updatedAt"] == user["updatedAt"]

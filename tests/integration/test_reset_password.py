"""`python -m services.auth reset-password EMAIL`, run as the operator runs it (a process of its
own against the suite's database): the new password works, every older token is refused, the
change is published, lock-outs are lifted; unknown emails and weak passwords change nothing.
And auth says at start that HERALD_ADMIN_PASSWORD is ignored once users exist."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import sys
import uuid
from typing import Any

import asyncpg
import pytest

from services.auth.app import create_app as auth_app
from shared.amqp import Broker, consume
from shared.config import Settings
from tests.conftest import AMQP_URL, ROOT, Suite

NEW_PASSWORD = "reset-password-42"


async def reset_password(settings: Settings, *args: str, stdin: str) -> tuple[int, str]:
    """Runs the command; (exit code, what it said on stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    env.update(
        HERALD_DATABASE_URL=settings.database_url,
        HERALD_ARGON2_TIME_COST=str(settings.argon2_time_cost),
        HERALD_ARGON2_MEMORY_KIB=str(settings.argon2_memory_kib),
        HERALD_ARGON2_PARALLELISM=str(settings.argon2_parallelism),
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.auth",
        "reset-password",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    _, stderr = await asyncio.wait_for(process.communicate(stdin.encode()), timeout=60)
    assert process.returncode is not None
    return process.returncode, stderr.decode()


async def login(suite: Suite, email: str, password: str) -> int:
    resp, _ = await suite.request(
        "POST", "/v2/requesttoken", base=suite.auth_url, json={"email": email, "password": password}
    )
    return resp.status


async def test_a_reset_password_works_revokes_old_tokens_and_is_published(suite: Suite) -> None:
    user, password, old_token = await suite.new_user()
    for _ in range(suite.settings.login_max_failures):  # the owner locked themselves out
        assert await login(suite, user["email"], "forgotten-password") == 401
    assert await login(suite, user["email"], password) == 429
    # What every service's verifier hears: the change, published on auth's exchange.
    broker = Broker(AMQP_URL, prefix=f"{suite.settings.queue_prefix}.reset-test")
    await broker.connect()
    try:
        published: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

        async def on_event(event: dict[str, Any], _message: Any) -> None:
            if event["data"]["id"] == user["id"] and not published.done():
                published.set_result(event)

        channel = await broker.channel()
        await consume(
            await broker.broadcast_queue(channel, suite.settings.auth_exchange, ["user.credentials_changed"]),
            on_event,
        )
        code, said = await reset_password(suite.settings, user["email"].upper(), stdin=NEW_PASSWORD + "\n")
        assert code == 0, said
        assert user["email"] in said and "refused" in said
        event = await asyncio.wait_for(published, timeout=30)
        assert event["type"] == "user.credentials_changed" and event["data"]["cv"] == 2
    finally:
        await broker.close()
    resp, _ = await suite.request("GET", "/v2/user/me", base=suite.auth_url, token=old_token)
    assert resp.status == 401
    assert await login(suite, user["email"], password) == 401
    new_token = await suite.token(user["email"], NEW_PASSWORD)  # the lock-out was lifted too
    resp, me = await suite.request("GET", "/v2/user/me", base=suite.auth_url, token=new_token)
    assert resp.status == 200 and me["id"] == user["id"]


async def _credential_version(settings: Settings, user_id: str) -> int:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return int(
            await conn.fetchval("SELECT credential_version FROM auth.users WHERE id = $1", uuid.UUID(user_id))
        )
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("args", "stdin", "code", "says"),
    [
        pytest.param(["ghost-{id}@test.local"], NEW_PASSWORD, 3, "no user has the email", id="unknown-email"),
        pytest.param(["{email}"], "short", 4, "refused", id="weak-password"),
        pytest.param(["{email}"], "", 4, "refused", id="empty-stdin"),
        pytest.param(["{email}", NEW_PASSWORD], "", 2, "usage", id="password-in-argv"),
        pytest.param([], NEW_PASSWORD, 2, "usage", id="no-email"),
    ],
)
async def test_a_refused_reset_says_why_and_changes_nothing(
    suite: Suite, args: list[str], stdin: str, code: int, says: str
) -> None:
    user, password, _ = await suite.new_user()
    argv = [a.format(id=uuid.uuid4().hex, email=user["email"]) for a in args]
    got, said = await reset_password(suite.settings, *argv, stdin=stdin + "\n")
    assert (got, says in said) == (code, True), said
    assert await _credential_version(suite.settings, user["id"]) == 1
    assert await login(suite, user["email"], password) == 200


async def test_auth_says_that_the_admin_password_is_ignored_once_users_exist(
    aiohttp_server: Any, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    await aiohttp_server(auth_app(settings))  # the first admin exists from here on
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="herald.auth.bootstrap"):
        await aiohttp_server(auth_app(dataclasses.replace(settings, admin_password="another-password-1")))
    said = [r.getMessage() for r in caplog.records if r.name == "herald.auth.bootstrap"]
    assert any("HERALD_ADMIN_PASSWORD is ignored" in m and "reset-password" in m for m in said), said

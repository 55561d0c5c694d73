"""Signing keys (from settings, generated for development, rotated) and migrations (once each,
under a lock, with replicas starting together)."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import jwt

from services.auth.app import MIGRATIONS as AUTH_MIGRATIONS
from services.auth.app import create_app as auth_app
from services.webhook_delivery.app import MIGRATIONS as WEBHOOK_MIGRATIONS
from services.webhook_delivery.app import SCHEMA as WEBHOOK_SCHEMA
from shared.config import Settings
from shared.db import ensure_database
from shared.migrations import apply_migrations
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, make_pem


async def test_migrations_run_twice_are_a_no_op(fresh_database_url: str) -> None:
    await ensure_database(fresh_database_url)
    first = await apply_migrations(fresh_database_url, "auth", AUTH_MIGRATIONS)
    assert first == [p.name for p in sorted(AUTH_MIGRATIONS.glob("*.sql"))]
    assert await apply_migrations(fresh_database_url, "auth", AUTH_MIGRATIONS) == []
    conn = await asyncpg.connect(fresh_database_url)
    try:
        rows = await conn.fetch("SELECT version, name FROM auth.schema_migrations ORDER BY version")
        assert [r["name"] for r in rows] == first
    finally:
        await conn.close()


async def test_an_upgraded_webhook_schema_loses_the_table_nothing_used(
    fresh_database_url: str, tmp_path: Path
) -> None:
    """A deployment migrated before processed_events was dropped gets only the drop on upgrade."""
    await ensure_database(fresh_database_url)
    for path in sorted(WEBHOOK_MIGRATIONS.glob("000[1-3]_*.sql")):
        shutil.copy(path, tmp_path)
    await apply_migrations(fresh_database_url, WEBHOOK_SCHEMA, tmp_path)
    exists = "SELECT to_regclass($1) IS NOT NULL"
    table = f"{WEBHOOK_SCHEMA}.processed_events"
    conn = await asyncpg.connect(fresh_database_url)
    try:
        assert await conn.fetchval(exists, table)
        applied = await apply_migrations(fresh_database_url, WEBHOOK_SCHEMA, WEBHOOK_MIGRATIONS)
        # 0004 and whatever came after it, not 0001 to 0003 again.
        assert applied == [p.name for p in sorted(WEBHOOK_MIGRATIONS.glob("*.sql"))][3:]
        assert applied[0] == "0004_drop_processed_events.sql"
        assert not await conn.fetchval(exists, table)
        assert await conn.fetchval(exists, f"{WEBHOOK_SCHEMA}.deliveries")
    finally:
        await conn.close()


async def test_replicas_migrating_together_apply_each_migration_once(
    fresh_database_url: str, tmp_path: Path
) -> None:
    # A slow migration widens the window in which replicas would race without the lock.
    (tmp_path / "0001_slow.sql").write_text(
        "SELECT pg_sleep(0.3); CREATE TABLE counter (n integer); INSERT INTO counter VALUES (1);"
    )
    (tmp_path / "0002_more.sql").write_text("UPDATE counter SET n = n + 1;")
    await ensure_database(fresh_database_url)
    results = await asyncio.gather(
        *(apply_migrations(fresh_database_url, "racing", tmp_path) for _ in range(5))
    )
    assert sorted(len(r) for r in results) == [0, 0, 0, 0, 2]
    conn = await asyncpg.connect(fresh_database_url)
    try:
        assert await conn.fetchval("SELECT n FROM racing.counter") == 2
    finally:
        await conn.close()


async def test_a_failing_migration_applies_nothing_of_itself(fresh_database_url: str, tmp_path: Path) -> None:
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE a (n integer);")
    (tmp_path / "0002_broken.sql").write_text("CREATE TABLE b (n integer); SELECT no_such_function();")
    await ensure_database(fresh_database_url)
    try:
        await apply_migrations(fresh_database_url, "broken", tmp_path)
    except asyncpg.PostgresError:
        pass
    else:
        raise AssertionError("the broken migration should have failed")
    conn = await asyncpg.connect(fresh_database_url)
    try:
        names = await conn.fetch("SELECT name FROM broken.schema_migrations")
        assert [r["name"] for r in names] == ["0001_ok.sql"]
        assert await conn.fetchval("SELECT to_regclass('broken.b')") is None
    finally:
        await conn.close()


async def test_rotated_key_keeps_verifying_its_tokens(
    edge_with_auth: Any, settings: Settings, fresh_database_url: str
) -> None:
    first = dataclasses.replace(settings, database_url=fresh_database_url, signing_key=make_pem())
    suite = await edge_with_auth(first)
    old_token = await suite.admin_token()
    await suite.auth_server.close()

    second = dataclasses.replace(first, signing_key=make_pem())
    suite = await edge_with_auth(second)
    new_token = await suite.admin_token()
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    new_kid = jwt.get_unverified_header(new_token)["kid"]
    assert old_kid != new_kid
    _, jwks = await suite.request("GET", "/v2/.well-known/jwks.json")
    assert {k["kid"] for k in jwks["keys"]} == {old_kid, new_kid}
    for token in (old_token, new_token):
        resp, me = await suite.request("GET", "/v2/user/me", token=token)
        assert resp.status == 200 and me["email"] == ADMIN_EMAIL


async def test_retired_key_leaves_the_jwks_when_its_tokens_have_expired(
    edge_with_auth: Any, settings: Settings, fresh_database_url: str
) -> None:
    first = dataclasses.replace(
        settings, database_url=fresh_database_url, signing_key=make_pem(), token_ttl=3600
    )
    suite = await edge_with_auth(first)
    old_kid = jwt.get_unverified_header(await suite.admin_token())["kid"]
    await suite.auth_server.close()
    suite = await edge_with_auth(dataclasses.replace(first, signing_key=make_pem()))

    async def published_after(minutes: int) -> set[str]:
        """The JWKS once the old key has been retired for this long (PostgreSQL's clock, moved
        by the test instead of waited out)."""
        conn = await asyncpg.connect(fresh_database_url)
        try:
            await conn.execute(
                "UPDATE auth.signing_keys SET retired_at = now() - make_interval(mins => $2) WHERE kid = $1",
                old_kid,
                minutes,
            )
        finally:
            await conn.close()
        _, jwks = await suite.request("GET", "/v2/.well-known/jwks.json")
        return {k["kid"] for k in jwks["keys"]}

    assert old_kid in await published_after(59)  # its tokens may still be valid
    published = await published_after(61)  # the last of them has expired
    assert old_kid not in published and len(published) == 1


async def test_development_key_is_generated_once_and_reused(
    edge_with_auth: Any, settings: Settings, fresh_database_url: str
) -> None:
    dev = dataclasses.replace(settings, database_url=fresh_database_url, signing_key="")
    kids = []
    for _ in range(2):
        suite = await edge_with_auth(dev)
        token = await suite.admin_token()
        kids.append(jwt.get_unverified_header(token)["kid"])
        resp, _ = await suite.request("GET", "/v2/user/me", token=token)
        assert resp.status == 200
        await suite.auth_server.close()
    assert kids[0] == kids[1]


async def test_first_admin_is_created_once(
    aiohttp_server: Any, settings: Settings, fresh_database_url: str
) -> None:
    fresh = dataclasses.replace(settings, database_url=fresh_database_url)
    servers = await asyncio.gather(*(aiohttp_server(auth_app(fresh)) for _ in range(3)))
    conn = await asyncpg.connect(fresh_database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM auth.users") == 1
        row = await conn.fetchrow("SELECT email, roles FROM auth.users")
        assert row["email"] == ADMIN_EMAIL and row["roles"] == ["admin"]
    finally:
        await conn.close()
    async with aiohttp.ClientSession() as session:
        url = str(servers[0].make_url("/v2/requesttoken"))
        async with session.post(url, json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}) as resp:
            assert resp.status == 200

"""Fixtures: a fresh PostgreSQL database and unique RabbitMQ names per test session, the
services started in-process on free ports behind a real nginx edge (tests/edge.py), and API
helpers. Nothing is mocked."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.harness import delete_amqp_names
from services.auth.app import create_app as auth_app
from services.docs.app import create_app as docs_app
from services.resource.app import create_app as resource_app
from services.webhook_delivery.app import create_app as webhook_app
from shared.config import Settings
from tests.edge import Edge, start_edge

ROOT = Path(__file__).resolve().parent.parent
ADMIN_EMAIL = "admin@test.local"
ADMIN_PASSWORD = "admin-password-1"
# The servers `make test` checked (HERALD_DATABASE_URL, HERALD_AMQP_URL) unless told otherwise;
# tests make their own database there and never touch the one named in the URL.
BASE_DSN = os.environ.get(
    "HERALD_TEST_DATABASE_URL",
    os.environ.get("HERALD_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/herald").rsplit("/", 1)[0]
    + "/postgres",
)
AMQP_URL = os.environ.get(
    "HERALD_TEST_AMQP_URL", os.environ.get("HERALD_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The directory says the kind: tests/unit, tests/integration, tests/e2e."""
    for item in items:
        kind = Path(str(item.fspath)).relative_to(ROOT / "tests").parts[0]
        if kind in ("unit", "integration", "e2e"):
            item.add_marker(getattr(pytest.mark, kind))


def dsn_for(database: str) -> str:
    return BASE_DSN.rsplit("/", 1)[0] + "/" + database


def make_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(BASE_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session", autouse=True)
def edges_stopped() -> Iterator[None]:
    """A test that forgot to close its Suite leaves no nginx behind."""
    yield
    from tests.edge import RUNNING

    for edge in list(RUNNING):
        asyncio.run(edge.stop())


@pytest.fixture(scope="session")
def test_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def signing_pem() -> str:
    return make_pem()


@pytest.fixture(scope="session")
def database_url(test_id: str) -> Iterator[str]:
    name = f"herald_test_{test_id}"
    yield dsn_for(name)  # the services create it on first start
    asyncio.run(drop_database(name))


@pytest.fixture(scope="session")
def amqp_prefix(test_id: str) -> Iterator[str]:
    prefix = f"herald.test.{test_id}"
    yield prefix
    asyncio.run(delete_amqp_names(prefix))


def make_settings(database_url: str, amqp_prefix: str, signing_pem: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "amqp_url": AMQP_URL,
        "auth_exchange": f"{amqp_prefix}.auth",
        "domain_exchange": f"{amqp_prefix}.domain",
        "queue_prefix": amqp_prefix,
        "signing_key": signing_pem,
        "admin_email": ADMIN_EMAIL,
        "admin_password": ADMIN_PASSWORD,
        # Cheap hashes keep the suite fast; production defaults are tested in test_passwords.
        "argon2_time_cost": 1,
        "argon2_memory_kib": 8192,
        "argon2_parallelism": 1,
        # Every test logs in from 127.0.0.1: tests of the limits turn them on themselves.
        "login_max_failures_per_address": 100_000,
        "requesttoken_rate_per_minute": 0,
        "user_rate_per_second": 0,
        "db_pool_size": 4,
        # One process per service: the edge's upstreams are the test servers' URLs.
        "auth_processes": 1,
        "resource_processes": 1,
        "webhook_processes": 1,
        "shutdown_timeout": 2.0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(database_url: str, amqp_prefix: str, signing_pem: str) -> Settings:
    return make_settings(database_url, amqp_prefix, signing_pem)


@dataclass
class Suite:
    """The services and the docs service in this process on free ports, behind nginx."""

    settings: Settings
    edge_url: str
    auth_url: str
    session: aiohttp.ClientSession
    auth_server: Any = None
    edge: Edge | None = None
    webhook_server: Any = None  # start_suite's, for tests that wait on its engine

    async def close(self) -> None:
        await self.session.close()
        if self.edge is not None:
            await self.edge.stop()

    async def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        data: Any = None,
        base: str | None = None,
    ) -> tuple[aiohttp.ClientResponse, Any]:
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        async with self.session.request(
            method, (base or self.edge_url) + path, json=json, data=data, headers=all_headers
        ) as resp:
            raw = await resp.read()
            body: Any = None
            if raw and resp.content_type in ("application/json", "application/problem+json"):
                body = await resp.json(content_type=None)
            elif raw:
                body = raw.decode(errors="replace")
            return resp, body

    async def token(self, email: str, password: str) -> str:
        resp, body = await self.request(
            "POST", "/v2/requesttoken", json={"email": email, "password": password}
        )
        assert resp.status == 200, body
        assert isinstance(body, str)
        return body

    async def admin_token(self) -> str:
        return await self.token(ADMIN_EMAIL, ADMIN_PASSWORD)

    async def new_user(
        self,
        roles: list[str] | None = None,
        password: str = "member-password-1",
    ) -> tuple[dict[str, Any], str, str]:
        """A new user with a unique email: (user, password, token)."""
        email = f"user-{uuid.uuid4().hex[:12]}@test.local"
        resp, user = await self.request(
            "POST",
            "/v2/user/list",
            token=await self.admin_token(),
            json={"email": email, "password": password, "name": "Test User", "roles": roles or ["member"]},
        )
        assert resp.status == 201, user
        return user, password, await self.token(email, password)


async def front(aiohttp_server: Any, wired: Settings, auth_server: Any = None, **edge: Any) -> Suite:
    """The docs service and nginx in front of the services `wired` names; `edge`: settings of
    the edge that differ from `wired` (limits, CORS...). Close the Suite when done."""
    docs = await aiohttp_server(docs_app(wired))
    wired = dataclasses.replace(wired, docs_url=server_url(docs))
    started = await start_edge(wired, **edge)
    return Suite(started.settings, started.url, wired.auth_url, aiohttp.ClientSession(), auth_server, started)


async def start_suite(aiohttp_server: Any, settings: Settings, resource_types: Any = None) -> Suite:
    """`resource_types`: the resource service's declarations, when a test adds its own."""
    url = server_url
    auth = await aiohttp_server(auth_app(settings))
    with_auth = dataclasses.replace(settings, auth_url=url(auth))
    resource_args = () if resource_types is None else (resource_types,)
    resource = await aiohttp_server(resource_app(with_auth, *resource_args))
    webhook = await aiohttp_server(webhook_app(with_auth))
    wired = dataclasses.replace(with_auth, resource_url=url(resource), webhook_url=url(webhook))
    started = await front(aiohttp_server, wired, auth)
    started.webhook_server = webhook
    return started


def server_url(server: Any) -> str:
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
async def edge_with_auth(aiohttp_server: Any, settings: Settings) -> AsyncIterator[Any]:
    """Starts auth, the docs service and nginx in front of them: `await edge_with_auth(base=None,
    **changes)` where `changes` are settings that differ (the other upstreams, limits...)."""
    suites: list[Suite] = []

    async def start(base: Settings | None = None, **changes: Any) -> Suite:
        base = base or settings
        auth = await aiohttp_server(auth_app(base))
        wired = dataclasses.replace(base, auth_url=server_url(auth), **changes)
        suites.append(await front(aiohttp_server, wired, auth))
        return suites[-1]

    yield start
    for started in suites:
        await started.close()


@pytest.fixture
async def suite(aiohttp_server: Any, settings: Settings) -> AsyncIterator[Suite]:
    started = await start_suite(aiohttp_server, settings)
    yield started
    await started.close()


@pytest.fixture
async def fresh_database_url() -> AsyncIterator[str]:
    """A database of its own, for tests that must see a first start."""
    name = f"herald_test_{uuid.uuid4().hex[:12]}"
    yield dsn_for(name)
    await drop_database(name)


def close_broker_connections(connection_name: str) -> int:
    """Close, from the broker's side, every AMQP connection with this name; how many.
    Skips the test where rabbitmqctl cannot be used."""
    import shutil
    import subprocess

    from tests.amqp_cut import close_connections

    if not shutil.which("rabbitmqctl"):
        pytest.skip("rabbitmqctl is not installed")
    try:
        return close_connections(connection_name, wait=None)  # tests call it from the client's loop
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"rabbitmqctl cannot list or close connections: {(exc.stderr or '').strip()[:200]}")


@pytest.fixture(autouse=True)
def _webhooks_end_with_their_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """The tests of a session share one database: a test's webhook subscriptions (their
    receivers stopped with it) would otherwise match every later test's events, and their
    pending deliveries would take the later tests' workers' time, more the more tests ran
    before (thousands after the burst test). So they end with the test that made them."""
    yield
    if "database_url" in request.fixturenames:
        asyncio.run(_quiet_webhooks(request.getfixturevalue("database_url")))


async def _quiet_webhooks(url: str) -> None:
    try:
        conn = await asyncpg.connect(url)
    except (OSError, asyncpg.PostgresError):
        return  # no database yet: nothing was made
    try:
        if await conn.fetchval("SELECT to_regclass('webhook_delivery.deliveries') IS NOT NULL"):
            await conn.execute(
                "UPDATE webhook_delivery.subscriptions SET active = false,"
                " disabled_reason = 'its test ended' WHERE active"
            )
            await conn.execute(
                "UPDATE webhook_delivery.deliveries SET status = 'skipped', next_attempt_at = NULL,"
                " lease_until = NULL WHERE status = 'pending'"
            )
    finally:
        await conn.close()

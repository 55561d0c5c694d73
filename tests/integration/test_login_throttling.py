"""Repeated failed logins, 429 with Retry-After: per (email, client address) pair, per client
address, and a slower per-email brake that an address the owner logged in from before passes,
so that nobody can lock an account's owner out by guessing at it."""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from services.auth.app import create_app as auth_app
from shared.config import Settings
from tests.conftest import Suite, server_url


class Clock:
    """The throttle's clock, moved by hand: lock-outs end without waiting for them."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def start_auth(aiohttp_server: Any, settings: Settings, clock: Clock) -> AsyncIterator[Any]:
    """`await start_auth(**changes)`: auth alone, with these settings changed, on `clock`."""
    sessions: list[aiohttp.ClientSession] = []

    async def start(**changes: Any) -> Suite:
        changed = dataclasses.replace(settings, **changes)
        url = server_url(await aiohttp_server(auth_app(changed, clock)))
        sessions.append(aiohttp.ClientSession())
        return Suite(changed, url, url, sessions[-1])

    yield start
    for session in sessions:
        await session.close()


# The tests of a session share one database, and so the failure counts of each client address:
# every address is counted out, not drawn at random, so no two tests (nor two calls) share one.
_IPV6 = itertools.count(1)
_IPV4 = itertools.count(1)


def new_address() -> str:
    """A client address of its own (IPv6 documentation range), sent as X-Forwarded-For from
    loopback, which auth trusts as a proxy in the tests' settings."""
    return f"2001:db8::{next(_IPV6):x}"


def new_ipv4_address() -> str:
    """Likewise in IPv4's documentation range 203.0.113.0/24 (254 of them a session)."""
    host = next(_IPV4)
    assert host < 255, "203.0.113.0/24 is used up: give the IPv4 tests another range"
    return f"203.0.113.{host}"


async def login(auth: Suite, email: str, password: str, address: str | None = None) -> aiohttp.ClientResponse:
    headers = {"X-Forwarded-For": address} if address else None
    resp, _ = await auth.request(
        "POST", "/v2/requesttoken", json={"email": email, "password": password}, headers=headers
    )
    return resp


async def test_guesses_from_many_addresses_do_not_lock_the_owner_out(start_auth: Any) -> None:
    auth = await start_auth()  # the default limits: 5 a pair, 50 an email
    user, password, _ = await auth.new_user()
    for _ in range(10):
        assert (await login(auth, user["email"], "wrong-password", new_address())).status == 401
    assert (await login(auth, user["email"], password)).status == 200  # the owner, from 127.0.0.1


async def test_an_address_that_keeps_guessing_locks_only_itself(start_auth: Any, clock: Clock) -> None:
    auth = await start_auth(login_max_failures=3, login_lockout_seconds=120)
    user, password, _ = await auth.new_user()
    guesser, elsewhere = new_address(), new_address()
    statuses = [(await login(auth, user["email"], "wrong-password", guesser)).status for _ in range(3)]
    assert statuses == [401, 401, 401]
    refused = await login(auth, user["email"], password, guesser)
    assert refused.status == 429 and int(refused.headers["Retry-After"]) == 120
    assert (await login(auth, user["email"], password, elsewhere)).status == 200
    clock.advance(60)
    assert int((await login(auth, user["email"], password, guesser)).headers["Retry-After"]) == 60
    clock.advance(61)
    assert (await login(auth, user["email"], password, guesser)).status == 200


async def test_the_per_email_brake_refuses_new_addresses_but_not_known_ones(
    start_auth: Any, clock: Clock
) -> None:
    auth = await start_auth(login_max_failures_per_email=4, login_lockout_seconds=300)
    user, password, _ = await auth.new_user()
    known = new_address()
    assert (await login(auth, user["email"], password, known)).status == 200
    for _ in range(4):
        assert (await login(auth, user["email"], "wrong-password", new_address())).status == 401
    braked = await login(auth, user["email"], password, new_address())
    assert braked.status == 429 and int(braked.headers["Retry-After"]) == 300
    # The owner's address from before still gets in, and a guess from it is still checked.
    assert (await login(auth, user["email"], password, known)).status == 200
    assert (await login(auth, user["email"], "wrong-password", known)).status == 401
    clock.advance(301)
    assert (await login(auth, user["email"], password, new_address())).status == 200


async def test_a_known_address_is_forgotten_after_the_configured_days(start_auth: Any, clock: Clock) -> None:
    auth = await start_auth(login_max_failures_per_email=2, login_known_address_days=30)
    user, password, _ = await auth.new_user()
    known = new_address()
    assert (await login(auth, user["email"], password, known)).status == 200
    clock.advance(31 * 24 * 3600)
    for _ in range(2):
        assert (await login(auth, user["email"], "wrong-password", new_address())).status == 401
    assert (await login(auth, user["email"], password, known)).status == 429


async def test_the_brake_is_the_same_for_emails_that_do_not_exist(start_auth: Any) -> None:
    """A 429 says nothing about whether an account exists."""
    auth = await start_auth(login_max_failures_per_email=3)
    ghost = f"ghost-{uuid.uuid4().hex}@test.local"
    statuses = [(await login(auth, ghost, "nope-nope", new_address())).status for _ in range(4)]
    assert statuses == [401, 401, 401, 429]


async def test_an_email_is_locked_for_the_address_that_guessed(start_auth: Any, settings: Settings) -> None:
    auth = await start_auth(login_max_failures=3, login_lockout_seconds=120)
    user, password, _ = await auth.new_user()
    wrong = {"email": user["email"], "password": "wrong-password"}
    statuses = [(await auth.request("POST", "/v2/requesttoken", json=wrong))[0].status for _ in range(3)]
    assert statuses == [401, 401, 401]
    resp, problem = await auth.request(
        "POST", "/v2/requesttoken", json={"email": user["email"], "password": password}
    )
    assert resp.status == 429, problem
    assert 100 <= int(resp.headers["Retry-After"]) <= 120
    assert problem["status"] == 429 and "try again" in problem["detail"]
    # Unknown emails lock the same way, so a 429 says nothing about whether one exists.
    ghost = {"email": f"ghost-{uuid.uuid4().hex}@test.local", "password": "nope-nope"}
    statuses = [(await auth.request("POST", "/v2/requesttoken", json=ghost))[0].status for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    # Other users are not affected.
    other, other_password, _ = await auth.new_user()
    await auth.token(other["email"], other_password)


async def test_a_success_resets_the_count(start_auth: Any, settings: Settings) -> None:
    auth = await start_auth(login_max_failures=3)
    user, password, _ = await auth.new_user()
    wrong = {"email": user["email"], "password": "wrong-password"}
    for _ in range(2):
        await auth.request("POST", "/v2/requesttoken", json=wrong)
    await auth.token(user["email"], password)
    for _ in range(2):
        resp, _ = await auth.request("POST", "/v2/requesttoken", json=wrong)
        assert resp.status == 401
    await auth.token(user["email"], password)


async def test_a_client_address_is_throttled_across_emails(start_auth: Any, settings: Settings) -> None:
    auth = await start_auth(login_max_failures_per_address=4)
    address = new_ipv4_address()
    statuses = []
    for _ in range(5):
        body = {"email": f"spray-{uuid.uuid4().hex}@test.local", "password": "password-1"}
        resp, _ = await auth.request(
            "POST", "/v2/requesttoken", json=body, headers={"X-Forwarded-For": address}
        )
        statuses.append(resp.status)
    assert statuses == [401, 401, 401, 401, 429]
    assert int(resp.headers["Retry-After"]) > 0
    # The header is believed only from a trusted proxy (here: loopback); the peer's own
    # address is otherwise used, so a caller cannot shed the limit by inventing addresses.


async def test_wrong_current_password_counts_as_a_failed_login(start_auth: Any, settings: Settings) -> None:
    auth = await start_auth(login_max_failures=2)
    _user, password, token = await auth.new_user()
    for _ in range(2):
        resp, _ = await auth.request(
            "PATCH",
            "/v2/user/me",
            token=token,
            json={"password": "new-password-1", "currentPassword": "guess-1"},
        )
        assert resp.status == 403
    resp, _ = await auth.request(
        "PATCH",
        "/v2/user/me",
        token=token,
        json={"password": "new-password-1", "currentPassword": password},
    )
    assert resp.status == 429 and resp.headers["Retry-After"]


async def test_password_is_rehashed_when_argon2_parameters_change(
    start_auth: Any, settings: Settings
) -> None:
    import asyncpg

    auth = await start_auth()
    user, password, _ = await auth.new_user()
    auth = await start_auth(argon2_time_cost=2)
    conn = await asyncpg.connect(settings.database_url)
    before = await conn.fetchval("SELECT password_hash FROM auth.users WHERE id = $1", uuid.UUID(user["id"]))
    assert "t=1" in before
    await auth.token(user["email"], password)
    after = await conn.fetchval("SELECT password_hash FROM auth.users WHERE id = $1", uuid.UUID(user["id"]))
    cv = await conn.fetchval("SELECT credential_version FROM auth.users WHERE id = $1", uuid.UUID(user["id"]))
    await conn.close()
    assert after.startswith("$argon2id$") and "t=2" in after
    assert cv == 1  # same password: tokens stay valid
    await auth.token(user["email"], password)


async def test_guesses_sent_together_cannot_outrun_the_lock_out(start_auth: Any, settings: Settings) -> None:
    """Attempts are counted before the password check: 40 guesses at once get 5 checks."""
    import asyncio

    auth = await start_auth(login_max_failures=5)
    user, _, _ = await auth.new_user()
    wrong = {"email": user["email"], "password": "guess-guess"}
    answers = await asyncio.gather(*(auth.request("POST", "/v2/requesttoken", json=wrong) for _ in range(40)))
    statuses = sorted(resp.status for resp, _ in answers)
    assert statuses.count(401) == 5 and statuses.count(429) == 35


async def test_right_passwords_sent_together_never_lock_the_account(
    start_auth: Any, settings: Settings
) -> None:
    import asyncio

    auth = await start_auth(login_max_failures=5)
    user, password, _ = await auth.new_user()
    right = {"email": user["email"], "password": password}
    answers = await asyncio.gather(*(auth.request("POST", "/v2/requesttoken", json=right) for _ in range(12)))
    statuses = [resp.status for resp, _ in answers]
    assert set(statuses) <= {200, 429} and statuses.count(200) >= 5
    # Refusals were "busy, retry in a second", never a lock-out:
    assert all(resp.headers["Retry-After"] == "1" for resp, _ in answers if resp.status == 429)
    await auth.token(user["email"], password)


async def test_guesses_from_one_address_sent_together_are_bounded(
    start_auth: Any, settings: Settings
) -> None:
    import asyncio

    auth = await start_auth(login_max_failures_per_address=3)
    address = new_ipv4_address()
    bodies = [{"email": f"spray-{uuid.uuid4().hex}@test.local", "password": "password-1"} for _ in range(20)]
    answers = await asyncio.gather(
        *(
            auth.request("POST", "/v2/requesttoken", json=b, headers={"X-Forwarded-For": address})
            for b in bodies
        )
    )
    statuses = sorted(resp.status for resp, _ in answers)
    assert statuses.count(401) == 3 and statuses.count(429) == 17


async def test_a_limit_of_one_locks_on_the_first_failure(start_auth: Any, settings: Settings) -> None:
    auth = await start_auth(login_max_failures=1)
    user, password, _ = await auth.new_user()
    resp, _ = await auth.request(
        "POST", "/v2/requesttoken", json={"email": user["email"], "password": "nope-nope"}
    )
    assert resp.status == 401
    resp, _ = await auth.request(
        "POST", "/v2/requesttoken", json={"email": user["email"], "password": password}
    )
    assert resp.status == 429 and int(resp.headers["Retry-After"]) > 1

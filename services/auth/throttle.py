"""Login throttling: password guesses are bounded without handing an attacker a way to lock
anyone out.

Three counters, each with its own limit over HERALD_LOGIN_FAILURE_WINDOW:

- `addr:<address>`: failures from one client address, whatever the emails (spraying);
- `pair:<address> <email>`: failures for one email from one address; the right password from
  that address is refused too while it is locked, but from anywhere else it is not;
- `email:<email>`: failures for one email from every address (a guessing botnet), a slower
  brake that applies only to addresses the user has never logged in from: the owner, at an
  address known from an earlier login, still gets in.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiohttp import web

from services.auth.appkeys import CLOCK, TRUSTED_PROXIES
from services.auth.repo import KnownAddressRepo, ThrottleRepo
from shared.appkeys import DATABASE, SETTINGS
from shared.problems import Problem
from shared.web.client import client_address

Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class Attempt:
    """What the password check found: set `matched` (False: a failure) and, on success, the
    user it matched. Left at None, the check itself broke: the attempt is only given back."""

    matched: bool | None = None
    user_id: uuid.UUID | None = None


def _keys(request: web.Request, email: str, address: str, known: bool) -> list[tuple[str, int]]:
    """The counters of one attempt, always in this order (address, pair, email): every
    transaction locks these rows in the same order, so two never deadlock."""
    settings = request.app[SETTINGS]
    email = email.lower()
    keys = [
        (f"addr:{address}", settings.login_max_failures_per_address),
        (f"pair:{address} {email}", settings.login_max_failures),
    ]
    if not known:
        keys.append((f"email:{email}", settings.login_max_failures_per_email))
    return keys


@asynccontextmanager
async def login_attempt(request: web.Request, email: str, refusal: str) -> AsyncIterator[Attempt]:
    """`async with login_attempt(request, email, refusal) as attempt:` check the password and
    set `attempt.matched` inside. Raises a 429 (Retry-After) before the check when a counter
    refuses; counts the outcome after it; a success makes the address known for the user."""
    app = request.app
    settings, db, now = app[SETTINGS], app[DATABASE], app[CLOCK]
    address = client_address(request, app[TRUSTED_PROXIES])
    since = now() - timedelta(days=settings.login_known_address_days)
    async with db.connection() as conn:
        known = await KnownAddressRepo(conn).known(email, address, since)
    keys = _keys(request, email, address, known)
    async with db.transaction() as conn:
        throttle = ThrottleRepo(conn)
        for key, limit in keys:
            wait = await throttle.reserve(key, limit=limit, window=settings.login_failure_window, now=now())
            if wait > 0:  # raising here rolls back the reservations already made
                raise Problem(429, refusal, headers={"Retry-After": str(math.ceil(wait))})
    attempt = Attempt()
    try:
        yield attempt
    finally:
        async with db.transaction() as conn:
            throttle = ThrottleRepo(conn)
            at = now()
            for key, limit in keys:
                await throttle.settle(
                    key,
                    failed=attempt.matched is False,
                    # A success clears its own pair's count only: neither the address's (one
                    # good account must not license spraying) nor the email's brake.
                    clear=attempt.matched is True and key.startswith("pair:"),
                    limit=limit,
                    lockout=settings.login_lockout_seconds,
                    now=at,
                )
            if attempt.matched and attempt.user_id is not None:
                await KnownAddressRepo(conn).remember(attempt.user_id, address, at)


async def prune(app: web.Application) -> None:
    """Forget counters whose window has passed and addresses not seen for long."""
    settings, now = app[SETTINGS], app[CLOCK]()
    async with app[DATABASE].transaction() as conn:
        await ThrottleRepo(conn).prune(settings.login_failure_window, now)
        await KnownAddressRepo(conn).prune(now - timedelta(days=settings.login_known_address_days))

"""The verifier's caches: a hot token costs no signature check and no look-up, yet a newer
credential version refuses it at once."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from shared.verifier import STALE_RETRY_SECONDS, Credentials, InvalidToken, TokenVerifier, VerifierUnavailable

ISS, AUD = "herald", "herald-api"


class Auth:
    """What the verifier asks auth: counted, so the tests see what the caches save."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "k1"
        self.cv: dict[str, int] = {}
        self.disabled: set[str] = set()
        self.jwks_calls = 0
        self.cv_calls = 0
        self.down = False
        self.failure: BaseException | None = None
        self.gate: asyncio.Event | None = None

    async def fetch_jwks(self) -> dict[str, Any]:
        self.jwks_calls += 1
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": self.kid}]}

    async def fetch_cv(self, user_id: str) -> Credentials | None:
        self.cv_calls += 1
        # Read first, answer later: a slow auth answers with what was true when asked.
        answer = Credentials(self.cv[user_id], user_id not in self.disabled) if user_id in self.cv else None
        if self.gate is not None:
            await self.gate.wait()
        if self.failure is not None:
            raise self.failure
        if self.down:
            raise VerifierUnavailable("auth is down")
        return answer

    def token(self, user_id: str, **changes: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": ISS,
            "aud": AUD,
            "sub": user_id,
            "email": "u@x.io",
            "roles": ["member"],
            "cv": self.cv[user_id],
            "iat": now,
            "nbf": now,
            "exp": now + 60,
            "jti": str(uuid.uuid4()),
        }
        claims.update(changes)
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})


class Clock:
    """The verifier's two clocks, moved on by the test instead of waited for."""

    def __init__(self, real: bool = False) -> None:
        self.real = real  # follow the real clocks (tests that do not move time)
        self.wall = time.time()
        self.mono = 1000.0

    def time(self) -> float:
        return time.time() if self.real else self.wall

    def monotonic(self) -> float:
        return time.monotonic() if self.real else self.mono

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


@pytest.fixture
def auth() -> Auth:
    return Auth()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _verifier(auth: Auth, cv_ttl: float = 60, clock: Clock | None = None) -> TokenVerifier:
    clock = clock or Clock(real=True)
    return TokenVerifier(
        issuer=ISS,
        audience=AUD,
        fetch_jwks=auth.fetch_jwks,
        fetch_cv=auth.fetch_cv,
        cv_ttl=cv_ttl,
        clock=clock.time,
        monotonic=clock.monotonic,
    )


async def _verified_once(
    auth: Auth, cv_ttl: float = 60, clock: Clock | None = None
) -> tuple[TokenVerifier, str]:
    """A verifier that has verified a token of user u1 (credentials version 1) once; the token."""
    auth.cv["u1"] = 1
    verifier = _verifier(auth, cv_ttl, clock)
    token = auth.token("u1")
    await verifier.verify(token)
    return verifier, token


async def test_a_hot_token_costs_no_lookups(auth: Auth) -> None:
    auth.cv["u1"] = 1
    verifier = _verifier(auth)
    token = auth.token("u1")
    first = await verifier.verify(token)
    assert first.user_id == "u1" and first.cv == 1 and not first.is_admin
    for _ in range(100):
        assert await verifier.verify(token) == first
    assert (auth.jwks_calls, auth.cv_calls) == (1, 1)


async def test_a_credentials_changed_event_refuses_old_tokens_at_once(auth: Auth) -> None:
    auth.cv["u1"] = 1
    verifier = _verifier(auth)
    old = auth.token("u1")
    await verifier.verify(old)
    auth.cv["u1"] = 2
    verifier.credentials_changed("u1", 2)
    with pytest.raises(InvalidToken, match="revoked"):
        await verifier.verify(old)
    assert (await verifier.verify(auth.token("u1"))).cv == 2
    verifier.credentials_changed("u1", 1)  # a late, older event changes nothing
    assert (await verifier.verify(auth.token("u1"))).cv == 2


async def test_deleted_users_and_unknown_versions(auth: Auth) -> None:
    verifier, token = await _verified_once(auth)
    verifier.user_deleted("u1")
    with pytest.raises(InvalidToken, match="no longer exists"):
        await verifier.verify(token)
    auth.cv["u2"] = 3
    verifier.credentials_changed("u2", None)  # version unknown: ask auth
    await verifier.verify(auth.token("u2"))
    assert auth.cv_calls == 2


async def test_after_a_reconnect_versions_are_asked_again(auth: Auth) -> None:
    verifier, token = await _verified_once(auth)
    auth.cv["u1"] = 2  # changed while the event channel was down: no event arrived
    verifier.forget_all_versions()
    with pytest.raises(InvalidToken):
        await verifier.verify(token)


async def test_cached_versions_expire(auth: Auth, clock: Clock) -> None:
    auth.cv["u1"] = 1
    verifier = _verifier(auth, cv_ttl=0)  # auth's own setting: always ask
    token = auth.token("u1")
    await verifier.verify(token)
    await verifier.verify(token)
    assert auth.cv_calls == 2 and auth.jwks_calls == 1
    # Trusted for cv_ttl, asked again after it.
    verifier = _verifier(auth, cv_ttl=60, clock=clock)
    await verifier.verify(token)
    clock.advance(59)
    await verifier.verify(token)
    assert auth.cv_calls == 3
    clock.advance(2)
    await verifier.verify(token)
    assert auth.cv_calls == 4


async def test_the_last_known_version_serves_while_auth_is_down(auth: Auth) -> None:
    verifier, token = await _verified_once(auth, cv_ttl=0)
    auth.down = True
    assert (await verifier.verify(token)).user_id == "u1"
    auth.cv["u2"] = 1
    with pytest.raises(VerifierUnavailable):  # never seen: cannot be vouched for
        await verifier.verify(auth.token("u2"))


async def test_unknown_key_ids_refetch_the_jwks_at_most_every_few_seconds(auth: Auth, clock: Clock) -> None:
    auth.cv["u1"] = 1
    verifier = _verifier(auth, clock=clock)
    await verifier.verify(auth.token("u1"))
    forged_kid = jwt.encode({"sub": "u1"}, auth.key, algorithm="RS256", headers={"kid": "nope"})
    for _ in range(20):
        with pytest.raises(InvalidToken, match="unknown key"):
            await verifier.verify(forged_kid)
    assert auth.jwks_calls == 1  # within the refresh interval: no refetch
    # A genuinely new key is picked up once the interval has passed.
    auth.key, auth.kid = rsa.generate_private_key(public_exponent=65537, key_size=2048), "k2"
    clock.advance(verifier.jwks_refresh_interval + 0.1)
    assert (await verifier.verify(auth.token("u1"))).user_id == "u1"
    assert auth.jwks_calls == 2


async def test_an_expired_cached_token_is_refused(auth: Auth, clock: Clock) -> None:
    auth.cv["u1"] = 1
    verifier = _verifier(auth, clock=clock)
    exp = int(time.time()) + 60
    token = auth.token("u1", exp=exp)
    await verifier.verify(token)
    clock.wall = exp + verifier.leeway  # the last second the leeway allows
    assert (await verifier.verify(token)).user_id == "u1"
    clock.advance(1)
    with pytest.raises(InvalidToken, match="expired"):
        await verifier.verify(token)
    assert auth.jwks_calls == 1  # refused from the cache, not by a new signature check


async def test_the_token_cache_is_bounded(auth: Auth) -> None:
    auth.cv["u1"] = 1
    verifier = _verifier(auth)
    verifier.max_cached_tokens = 5
    tokens = [auth.token("u1") for _ in range(8)]
    for token in tokens:
        await verifier.verify(token)
    assert list(verifier._tokens) == tokens[3:]


async def _callers_of_a_failing_lookup(
    auth: Auth, verifier: TokenVerifier, token: str, failure: Exception, callers: int
) -> list[Any]:
    """What `callers` verifications of one token get when the one look-up they share fails
    with `failure` (the look-up waits at auth's gate until all of them have asked)."""
    auth.gate = asyncio.Event()
    auth.failure = failure
    calls = [asyncio.create_task(verifier.verify(token)) for _ in range(callers)]
    await asyncio.sleep(0.05)
    auth.gate.set()
    return await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 30)


async def test_a_failed_lookup_fails_its_waiters_too_never_hangs(auth: Auth) -> None:
    """Requests for one user share one look-up; if it breaks in any way, all of them get a
    503-kind error at once (before: the waiters hung forever)."""
    auth.cv["u1"] = 1
    verifier = _verifier(auth)
    token = auth.token("u1")
    results = await _callers_of_a_failing_lookup(
        auth, verifier, token, OSError("connection to PostgreSQL lost"), 5
    )
    assert all(isinstance(r, VerifierUnavailable) for r in results), results
    assert auth.cv_calls == 1
    auth.failure, auth.gate = None, None
    assert (await verifier.verify(token)).user_id == "u1"


async def test_a_cancelled_lookup_does_not_strand_its_waiters(auth: Auth) -> None:
    auth.cv["u1"] = 1
    verifier = _verifier(auth)
    token = auth.token("u1")
    auth.gate = asyncio.Event()
    first = asyncio.create_task(verifier.verify(token))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(verifier.verify(token))
    await asyncio.sleep(0.05)
    first.cancel()
    with pytest.raises(VerifierUnavailable):
        await asyncio.wait_for(second, 30)


async def test_a_newer_token_is_accepted_before_its_event_arrives(auth: Auth) -> None:
    auth.cv["u1"] = 1
    verifier = _verifier(auth)
    old = auth.token("u1")
    await verifier.verify(old)
    auth.cv["u1"] = 2  # changed at auth; the event is late
    new = auth.token("u1")
    assert (await verifier.verify(new)).cv == 2  # asked auth instead of refusing it
    with pytest.raises(InvalidToken, match="revoked"):
        await verifier.verify(old)  # and the old one is refused from then on


async def test_a_late_event_does_not_bring_a_deleted_user_back(auth: Auth) -> None:
    verifier, token = await _verified_once(auth)
    verifier.user_deleted("u1")
    verifier.credentials_changed("u1", 1)
    verifier.credentials_changed("u1", 5)
    with pytest.raises(InvalidToken, match="no longer exists"):
        await verifier.verify(token)


async def test_a_disabled_user_is_refused_and_comes_back_when_enabled(auth: Auth) -> None:
    auth.cv["u1"] = 1
    verifier = _verifier(auth)
    await verifier.verify(auth.token("u1"))
    auth.cv["u1"] = 2
    auth.disabled.add("u1")
    verifier.credentials_changed("u1", 2, active=False)
    with pytest.raises(InvalidToken, match="disabled"):
        await verifier.verify(auth.token("u1"))
    auth.cv["u1"] = 3
    auth.disabled.clear()
    verifier.credentials_changed("u1", 3, active=True)
    assert (await verifier.verify(auth.token("u1"))).cv == 3


async def test_tokens_of_a_key_that_left_the_jwks_are_refused(auth: Auth) -> None:
    verifier, token = await _verified_once(auth)
    auth.key, auth.kid = rsa.generate_private_key(public_exponent=65537, key_size=2048), "k2"
    await verifier.refresh_keys()  # k1 is gone from the JWKS
    with pytest.raises(InvalidToken, match="unknown key"):
        await verifier.verify(token)


async def test_while_auth_is_down_it_is_asked_again_only_after_a_pause(auth: Auth, clock: Clock) -> None:
    verifier, token = await _verified_once(auth, cv_ttl=0, clock=clock)
    auth.down = True
    for _ in range(10):
        await verifier.verify(token)
    assert auth.cv_calls == 2  # one failed look-up, then the stale version is served
    clock.advance(STALE_RETRY_SECONDS - 0.1)
    await verifier.verify(token)
    assert auth.cv_calls == 2
    clock.advance(0.2)  # the pause is over: asked again (and still served while auth is down)
    await verifier.verify(token)
    assert auth.cv_calls == 3


async def test_an_event_during_a_failing_lookup_is_not_lost(auth: Auth) -> None:
    verifier, token = await _verified_once(auth, cv_ttl=0)
    auth.gate = asyncio.Event()
    auth.failure = TimeoutError("auth hangs")
    call = asyncio.create_task(verifier.verify(token))
    await asyncio.sleep(0.05)
    verifier.user_deleted("u1")  # arrives while the look-up waits, then the look-up fails
    auth.gate.set()
    with pytest.raises(InvalidToken, match="no longer exists"):
        await call
    with pytest.raises(InvalidToken, match="no longer exists"):
        await verifier.verify(token)


async def test_every_caller_of_a_broken_lookup_gets_the_same_503(auth: Auth) -> None:
    auth.cv["u1"] = 1
    verifier = _verifier(auth)
    token = auth.token("u1")
    results = await _callers_of_a_failing_lookup(
        auth, verifier, token, RuntimeError("a database blip at auth"), 3
    )
    assert [type(r) for r in results] == [VerifierUnavailable] * 3


async def test_a_newer_token_while_auth_is_down_is_a_503_not_a_revocation(auth: Auth, clock: Clock) -> None:
    auth.cv["u1"] = 1
    verifier = _verifier(auth, cv_ttl=0, clock=clock)
    await verifier.verify(auth.token("u1"))
    auth.cv["u1"] = 2
    newer = auth.token("u1")
    auth.down = True
    for _ in range(5):
        with pytest.raises(VerifierUnavailable):
            await verifier.verify(newer)
    assert auth.cv_calls == 2  # one failed look-up, then a pause instead of asking each time
    auth.down = False
    verifier._cv.clear()
    assert (await verifier.verify(newer)).cv == 2


async def test_a_newer_token_does_not_settle_for_a_lookup_begun_before_it(auth: Auth) -> None:
    auth.cv["u1"] = 1
    verifier = _verifier(auth, cv_ttl=0)
    old = auth.token("u1")
    await verifier.verify(old)
    auth.gate = asyncio.Event()
    first = asyncio.create_task(verifier.verify(old))  # its look-up will answer cv 1
    await asyncio.sleep(0.05)
    auth.gate.set()
    auth.gate = None
    auth.cv["u1"] = 2  # the look-up above already read cv 1
    newer = auth.token("u1")
    second = asyncio.create_task(verifier.verify(newer))
    assert (await first).cv == 1
    assert (await second).cv == 2

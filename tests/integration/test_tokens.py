"""Tokens through the edge: issued, accepted, and every kind of bad token refused."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from typing import Any

import argon2
import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization

from shared.config import Settings
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Suite, make_pem, make_settings

# How long a refused token may take to be refused (only bounds a hang): far below the
# verifiers' trust in a cached credential version, so only the event can refuse it in time.
REVOKED_WITHIN = 30.0


@pytest.fixture
def settings(database_url: str, amqp_prefix: str, signing_pem: str) -> Settings:
    return make_settings(database_url, amqp_prefix, signing_pem, cv_cache_seconds=3600.0)


def _claims(suite: Suite, user: dict[str, Any], **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": suite.settings.token_issuer,
        "aud": suite.settings.token_audience,
        "sub": user["id"],
        "email": user["email"],
        "roles": user["roles"],
        "cv": 1,
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "jti": str(uuid.uuid4()),
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _kid(suite: Suite, token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


def _sign(suite: Suite, claims: dict[str, Any], kid: str, pem: str | None = None) -> str:
    return jwt.encode(claims, pem or suite.settings.signing_key, algorithm="RS256", headers={"kid": kid})


async def _assert_refused(suite: Suite, token: str, reason: str) -> None:
    resp, body = await suite.request("GET", "/v2/user/me", token=token)
    assert resp.status == 401, (reason, body)
    assert resp.content_type == "application/problem+json"
    challenge = resp.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge, challenge
    assert body["status"] == 401 and body["instance"] == resp.headers["X-Request-ID"]


async def test_token_is_issued_and_accepted_through_the_edge(suite: Suite) -> None:
    token = await suite.token(ADMIN_EMAIL, ADMIN_PASSWORD)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["kid"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert set(claims) >= {"iss", "aud", "sub", "email", "roles", "cv", "iat", "nbf", "exp", "jti"}
    # about a year by default
    assert 364 * 86400 <= claims["exp"] - claims["iat"] <= 366 * 86400
    resp, me = await suite.request("GET", "/v2/user/me", token=token)
    assert resp.status == 200
    assert me["email"] == ADMIN_EMAIL and me["roles"] == ["admin"]
    assert "password" not in orjson.dumps(me).decode().lower()


async def test_wrong_email_and_wrong_password_get_identical_answers(
    suite: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, _, _ = await suite.new_user()
    cases = {
        "unknown email": {"email": f"nobody-{uuid.uuid4().hex}@test.local", "password": "whatever-1"},
        "wrong password": {"email": user["email"], "password": "wrong-password"},
    }
    # The argon2 cost of each verification (m=..,t=..,p=..): what makes both take as long
    # (bench/login_timing.py measures how long).
    costs: list[str] = []
    verify = argon2.PasswordHasher.verify

    def recording(self: argon2.PasswordHasher, hash: str | bytes, password: str | bytes) -> bool:
        costs.append((hash.decode() if isinstance(hash, bytes) else hash).split("$")[3])
        return verify(self, hash, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", recording)
    answers, spent = {}, {}
    for name, body in cases.items():
        costs.clear()
        resp, problem = await suite.request("POST", "/v2/requesttoken", json=body)
        answers[name] = (
            resp.status,
            resp.headers.get("WWW-Authenticate"),
            {k: v for k, v in problem.items() if k != "instance"},
        )
        spent[name] = list(costs)
    assert answers["unknown email"] == answers["wrong password"]
    assert answers["unknown email"][0] == 401
    # One argon2 verification each, of the same cost.
    assert len(spent["wrong password"]) == 1 and spent["unknown email"] == spent["wrong password"], spent


async def test_jwks_publishes_the_signing_key(suite: Suite) -> None:
    token = await suite.admin_token()
    resp, jwks = await suite.request("GET", "/v2/.well-known/jwks.json")
    assert resp.status == 200
    kids = {k["kid"] for k in jwks["keys"]}
    assert _kid(suite, token) in kids
    assert all(k["kty"] == "RSA" and k["alg"] == "RS256" and "d" not in k for k in jwks["keys"])


async def test_forged_and_malformed_tokens_are_refused(suite: Suite) -> None:
    user, _, token = await suite.new_user()
    kid = _kid(suite, token)
    good = jwt.decode(token, options={"verify_signature": False})

    def b64(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")

    header_b64, payload_b64, signature = token.split(".")
    alg_none = f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{payload_b64}."
    public_pem = (
        serialization.load_pem_private_key(suite.settings.signing_key.encode(), None)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    # The classic key-confusion attack: HS256 with the RSA public key as the HMAC secret.
    import hashlib
    import hmac

    hs_header = b64({"alg": "HS256", "typ": "JWT", "kid": kid})
    signing_input = f"{hs_header}.{payload_b64}".encode()
    hs_sig = base64.urlsafe_b64encode(hmac.new(public_pem, signing_input, hashlib.sha256).digest())
    hs256 = f"{hs_header}.{payload_b64}.{hs_sig.decode().rstrip('=')}"
    tampered = f"{header_b64}.{b64({**good, 'roles': ['admin']})}.{signature}"
    other_key = make_pem()
    now = int(time.time())
    cases = {
        "alg none": alg_none,
        "HS256 with the public key": hs256,
        "tampered payload": tampered,
        "expired": _sign(suite, _claims(suite, user, iat=now - 7200, nbf=now - 7200, exp=now - 3600), kid),
        "not yet valid": _sign(suite, _claims(suite, user, nbf=now + 3600), kid),
        "wrong iss": _sign(suite, _claims(suite, user, iss="someone-else"), kid),
        "wrong aud": _sign(suite, _claims(suite, user, aud="another-api"), kid),
        "unknown kid": _sign(suite, _claims(suite, user), "no-such-key"),
        "known kid, other key": _sign(suite, _claims(suite, user), kid, other_key),
        "missing cv": _sign(suite, _claims(suite, user, cv=None), kid),
        "not a JWT": "not-a-token",
    }
    for reason, bad in cases.items():
        await _assert_refused(suite, bad, reason)
    # Control: a token signed the same way with the right claims works, so the refusals above
    # are for the reasons named, not for the way the tests sign.
    resp, _ = await suite.request("GET", "/v2/user/me", token=_sign(suite, _claims(suite, user), kid))
    assert resp.status == 200


async def test_missing_or_malformed_authorization_header(suite: Suite) -> None:
    resp, _ = await suite.request("GET", "/v2/user/me")
    assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
    resp, _body = await suite.request("GET", "/v2/user/me", headers={"Authorization": "Basic abc"})
    assert resp.status == 401 and 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


async def _refused(suite: Suite, token: str, path: str = "/v2/user/me", base: str | None = None) -> None:
    """Accepted until it is refused: by the event, as the cached version would outlive this."""
    async with asyncio.timeout(REVOKED_WITHIN):
        while True:
            resp, _ = await suite.request("GET", path, token=token, base=base)
            if resp.status == 401:
                return
            assert resp.status == 200
            await asyncio.sleep(0.02)


@pytest.mark.parametrize("change", ["password", "email"])
async def test_old_token_fails_soon_after_a_credential_change(suite: Suite, change: str) -> None:
    user, password, old = await suite.new_user()
    # Warm the resource service's verifier: it knows this token's credential version now.
    resp, _ = await suite.request("GET", "/v2/event/list", token=old)
    assert resp.status == 200
    new_email = f"renamed-{uuid.uuid4().hex[:8]}@test.local"
    patch = {"password": "a-new-password-2"} if change == "password" else {"email": new_email}
    resp, body = await suite.request(
        "PATCH", "/v2/user/me", token=old, json={**patch, "currentPassword": password}
    )
    assert resp.status == 200, body
    # At once on auth itself (it reads the credential version from its own table).
    resp, _ = await suite.request("GET", "/v2/user/me", token=old, base=suite.auth_url)
    assert resp.status == 401
    # Soon at the resource service, which learns it from the event.
    await _refused(suite, old, "/v2/event/list")
    await _assert_refused(suite, old, f"before the {change} change")
    email = new_email if change == "email" else user["email"]
    fresh = await suite.token(email, patch.get("password", password))
    resp, me = await suite.request("GET", "/v2/user/me", token=fresh)
    assert resp.status == 200 and me["email"] == email


async def test_deleted_and_disabled_users_tokens_are_refused(suite: Suite) -> None:
    admin = await suite.admin_token()
    deleted, _, deleted_token = await suite.new_user()
    disabled, _, disabled_token = await suite.new_user()
    for token in (deleted_token, disabled_token):
        resp, _ = await suite.request("GET", "/v2/user/me", token=token)
        assert resp.status == 200
    resp, _ = await suite.request("DELETE", f"/v2/user/{deleted['id']}", token=admin)
    assert resp.status == 204
    resp, _ = await suite.request("PATCH", f"/v2/user/{disabled['id']}", token=admin, json={"active": False})
    assert resp.status == 200
    await _refused(suite, deleted_token)
    await _refused(suite, disabled_token)
    await _assert_refused(suite, deleted_token, "deleted user")
    # A disabled user cannot log in either, and gets the same answer as a wrong password.
    resp, body = await suite.request(
        "POST", "/v2/requesttoken", json={"email": disabled["email"], "password": "member-password-1"}
    )
    assert resp.status == 401 and body["detail"] == "the email or password is wrong"


async def test_role_change_revokes_old_tokens(suite: Suite) -> None:
    """A demoted admin must not keep admin rights for the year its token lives."""
    admin = await suite.admin_token()
    user, password, old = await suite.new_user(roles=["admin"])
    resp, _ = await suite.request("GET", "/v2/user/list", token=old)
    assert resp.status == 200
    resp, _ = await suite.request("PATCH", f"/v2/user/{user['id']}", token=admin, json={"roles": ["member"]})
    assert resp.status == 200
    await _refused(suite, old)
    fresh = await suite.token(user["email"], password)
    resp, _ = await suite.request("GET", "/v2/user/list", token=fresh)
    assert resp.status == 403


async def test_a_service_reached_without_the_edge_is_no_weaker(suite: Suite, aiohttp_server: Any) -> None:
    """Each service runs the same check: no token, a forged one or a revoked one is refused
    there too, and the verifier's look-up route at auth is not reachable through the edge."""
    from services.resource.app import create_app as resource_app

    resource = await aiohttp_server(resource_app(suite.settings))
    base = str(resource.make_url("")).rstrip("/")
    user, password, token = await suite.new_user()
    resp, _ = await suite.request("GET", "/v2/event/list", base=base)
    assert resp.status == 401
    resp, _ = await suite.request("GET", "/v2/event/list", base=base, token=token[:-4] + "AAAA")
    assert resp.status == 401
    resp, listed = await suite.request("GET", "/v2/event/list", base=base, token=token)
    assert resp.status == 200 and isinstance(listed, list)  # past the check
    resp, _ = await suite.request(
        "PATCH", "/v2/user/me", token=token, json={"password": "direct-access-2", "currentPassword": password}
    )
    assert resp.status == 200
    await _refused(suite, token, "/v2/event/list", base)
    admin = await suite.admin_token()
    resp, _ = await suite.request("GET", f"/internal/users/{user['id']}/credentials", token=admin)
    assert resp.status == 404  # the edge routes /v2/ only

"""Signing keys and token issuance. Keys come from settings (PEM) or, in development, are
generated once and stored; a key that stops signing stays in the JWKS until every token it
signed has expired."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from shared.config import Settings
from shared.verifier import ALGORITHM

_KEY_LOCK = 0x6865_7261  # advisory lock: one replica generates the development key


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey


def _public_jwk(private_key: rsa.RSAPrivateKey) -> dict[str, Any]:
    jwk = json.loads(RSAAlgorithm.to_jwk(private_key.public_key()))
    # RFC 7638 thumbprint as the key id: the same key always gets the same kid.
    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"), sort_keys=True)
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).decode().rstrip("=")
    return {**jwk, "kid": kid, "use": "sig", "alg": ALGORITHM}


def _load_pem(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
        raise ValueError("HERALD_SIGNING_KEY must be an RSA private key of at least 2048 bits")
    return key


async def load_signing_key(conn: asyncpg.Connection, settings: Settings) -> SigningKey:
    """The key that signs from now on; every other key is marked retired."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _KEY_LOCK)
        pem = settings.signing_key_pem()
        if pem:
            private_key = _load_pem(pem)
            jwk = _public_jwk(private_key)
            await conn.execute(
                "INSERT INTO signing_keys (kid, public_jwk) VALUES ($1, $2::jsonb)"
                " ON CONFLICT (kid) DO UPDATE SET retired_at = NULL",
                jwk["kid"],
                json.dumps(jwk),
            )
        else:
            row = await conn.fetchrow(
                "SELECT kid, private_pem FROM signing_keys"
                " WHERE retired_at IS NULL AND private_pem IS NOT NULL"
                " ORDER BY created_at DESC LIMIT 1"
            )
            if row is not None:
                private_key = _load_pem(row["private_pem"])
                jwk = _public_jwk(private_key)
            else:
                private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                jwk = _public_jwk(private_key)
                stored = private_key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ).decode()
                await conn.execute(
                    "INSERT INTO signing_keys (kid, public_jwk, private_pem) VALUES ($1, $2::jsonb, $3)",
                    jwk["kid"],
                    json.dumps(jwk),
                    stored,
                )
        await conn.execute(
            "UPDATE signing_keys SET retired_at = now() WHERE kid <> $1 AND retired_at IS NULL",
            jwk["kid"],
        )
    return SigningKey(jwk["kid"], private_key)


async def published_keys(conn: asyncpg.Connection, token_ttl: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT public_jwk FROM signing_keys"
        " WHERE retired_at IS NULL OR retired_at > now() - make_interval(secs => $1)"
        " ORDER BY created_at DESC",
        float(token_ttl),
    )
    return [json.loads(row["public_jwk"]) for row in rows]


def issue_token(key: SigningKey, settings: Settings, user: dict[str, Any]) -> str:
    now = int(time.time())
    claims = {
        "iss": settings.token_issuer,
        "aud": settings.token_audience,
        "sub": str(user["id"]),
        "email": user["email"],
        "roles": list(user["roles"]),
        "cv": user["credential_version"],
        "iat": now,
        "nbf": now,
        "exp": now + settings.token_ttl,
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})

"""The auth service's OpenAPI fragment: tokens, the JWKS and users. The models are the JSON
Schemas in `schemas.py` that validate the request bodies, so the document cannot drift."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson

from services.auth import schemas
from services.auth.handlers import BAD_CREDENTIALS, LAST_ADMIN, LOGIN_REFUSAL
from services.auth.repo import EMAIL_TAKEN
from shared.openapi import (
    CURSOR_PARAM,
    LIMIT_PARAM,
    empty_response,
    fragment,
    header,
    json_body,
    json_response,
    operation,
    paged_list,
    path_param,
    problems,
    schema_ref,
)
from shared.problems import Conflict, Problem
from shared.web.writes import MERGE_PATCH

TOKENS, USERS = "tokens", "users"
USER_ID = path_param("id", "The user's id.")
# Every call with a token may meet these: no/bad/revoked token, the edge's rate limit.
AUTHENTICATED = (401, 429)
ADMIN = (*AUTHENTICATED, 403)
WITH_BODY = (400, 413, 415, 422)

JWK: dict[str, Any] = {
    "type": "object",
    "description": "An RSA public key (RFC 7517).",
    "properties": {
        "kty": {"const": "RSA"},
        "kid": {"type": "string"},
        "use": {"const": "sig"},
        "alg": {"const": "RS256"},
        "n": {"type": "string"},
        "e": {"type": "string"},
    },
    "required": ["kty", "kid", "n", "e"],
}
JWKS: dict[str, Any] = {
    "type": "object",
    "properties": {"keys": {"type": "array", "items": schema_ref("Jwk")}},
    "required": ["keys"],
}


def _base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _token_example() -> str:
    """A token as POST /v2/requesttoken issues them: the same header and claims (a test compares
    them with a real one), for the user of the examples; the signature is 256 made-up bytes."""
    header = {"alg": "RS256", "kid": _base64url(hashlib.sha256(b"example key").digest()), "typ": "JWT"}
    claims = {
        "iss": "herald",
        "aud": "herald-api",
        "sub": "6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f",
        "email": "ada@example.com",
        "roles": ["member"],
        "cv": 1,
        "iat": 1767225600,
        "nbf": 1767225600,
        "exp": 1798761600,
        "jti": "9b2e7c4a-1d3f-4e5b-a6c7-d8e9f0a1b2c3",
    }
    signature = hashlib.shake_256(b"not a real signature").digest(256)
    return ".".join(_base64url(part) for part in (orjson.dumps(header), orjson.dumps(claims), signature))


TOKEN_EXAMPLE = _token_example()
TOKEN: dict[str, Any] = {
    "type": "string",
    "description": "The JWT (RS256). Send it as `Authorization: Bearer <token>`; in Swagger UI, "
    "paste it without the quotes into Authorize.",
    "examples": [TOKEN_EXAMPLE],
}

# The request examples run in this order in Swagger UI ("Try it out", then "Execute"): create
# Ada, then log in as Ada; the user operations change her (the id is hers). A test executes them.
EXAMPLE_EMAIL, EXAMPLE_PASSWORD = "ada@example.com", "correct-horse-battery-staple"
USER_CREATE_EXAMPLE = {
    "email": EXAMPLE_EMAIL,
    "password": EXAMPLE_PASSWORD,
    "name": "Ada Lovelace",
    "roles": ["member"],
}
TOKEN_REQUEST_EXAMPLE = {"email": EXAMPLE_EMAIL, "password": EXAMPLE_PASSWORD}
USER_REPLACE_EXAMPLE = {
    "email": EXAMPLE_EMAIL,
    "name": "Ada Lovelace",
    "roles": ["member", "approver"],
    "active": True,
}
USER_PATCH_EXAMPLE = {"name": "Ada King"}

USER = schema_ref("User")
USER_RESPONSE = json_response("The user.", USER)


def _user_change(op_id: str, summary: str, request_body: dict[str, Any], description: str) -> dict[str, Any]:
    """PUT and PATCH of a user (admin): the same answers; another body."""
    return operation(
        op_id,
        summary,
        [USERS],
        {"200": USER_RESPONSE, **problems(*ADMIN, *WITH_BODY, 404, examples=[Conflict(EMAIL_TAKEN)])},
        parameters=[USER_ID],
        request_body=request_body,
        description=description,
    )


def _paths() -> dict[str, Any]:
    return {
        "/v2/requesttoken": {
            "post": operation(
                "requestToken",
                "Get a token for an email and password",
                [TOKENS],
                {
                    "200": json_response(
                        "The token, as a JSON string.", schema_ref("Token"), example=TOKEN_EXAMPLE
                    ),
                    **problems(
                        *WITH_BODY,
                        examples=[
                            Problem(401, BAD_CREDENTIALS),
                            Problem(429, LOGIN_REFUSAL, headers={"Retry-After": "60"}),
                        ],
                    ),
                },
                request_body=json_body(schema_ref("TokenRequest"), example=TOKEN_REQUEST_EXAMPLE),
                description="Wrong email and wrong password get the same 401. Repeated failures "
                "for one email or one client address get 429 with Retry-After. The example is the "
                "user that the example of POST /v2/user/list creates; the first administrator is "
                "HERALD_ADMIN_EMAIL, with the password set or printed at the first start.",
                public=True,
            )
        },
        "/v2/.well-known/jwks.json": {
            "get": operation(
                "getJwks",
                "The public keys that verify tokens",
                [TOKENS],
                {
                    "200": json_response(
                        "The JSON Web Key Set; a retired key stays until its last token expires.",
                        schema_ref("Jwks"),
                        headers={"Cache-Control": header("public, max-age=300")},
                    )
                },
                public=True,
            )
        },
        "/v2/user/list": {
            "get": operation(
                "listUsers",
                "List the users (admin)",
                [USERS],
                {"200": paged_list(USER, "A page of users, oldest first."), **problems(*ADMIN, 400)},
                parameters=[LIMIT_PARAM, CURSOR_PARAM],
            ),
            "post": operation(
                "createUser",
                "Create a user (admin)",
                [USERS],
                {
                    "201": json_response(
                        "The new user.",
                        USER,
                        headers={"Location": header("The new user's URL, /v2/user/{id}.")},
                    ),
                    **problems(*ADMIN, *WITH_BODY, examples=[Conflict(EMAIL_TAKEN)]),
                },
                request_body=json_body(schema_ref("UserCreate"), example=USER_CREATE_EXAMPLE),
                description='`roles` defaults to `["member"]`. Another user with the same email is a 409.',
            ),
        },
        "/v2/user/me": {
            "get": operation(
                "getMe",
                "The caller's own account",
                [USERS],
                {"200": USER_RESPONSE, **problems(*AUTHENTICATED)},
            ),
            "patch": operation(
                "patchMe",
                "Change the caller's own name, email or password",
                [USERS],
                {
                    "200": USER_RESPONSE,
                    **problems(*AUTHENTICATED, *WITH_BODY, 403, examples=[Conflict(EMAIL_TAKEN)]),
                },
                request_body=json_body(
                    schema_ref("MePatch"), content_types=MERGE_PATCH, example=USER_PATCH_EXAMPLE
                ),
                description="A JSON Merge Patch (RFC 7396). Changing email or password needs "
                "`currentPassword` (a wrong one is a 403) and revokes every token of the caller.",
            ),
        },
        "/v2/user/{id}": {
            "get": operation(
                "getUser",
                "Get a user (admin)",
                [USERS],
                {"200": USER_RESPONSE, **problems(*ADMIN, 404)},
                parameters=[USER_ID],
            ),
            "put": _user_change(
                "replaceUser",
                "Replace a user's writable fields (admin)",
                json_body(schema_ref("UserReplace"), example=USER_REPLACE_EXAMPLE),
                "Never creates. Read-only fields may be sent back unchanged. Demoting "
                "or disabling the last active admin is a 409.",
            ),
            "patch": _user_change(
                "patchUser",
                "Change some of a user's fields (admin)",
                json_body(schema_ref("UserPatch"), content_types=MERGE_PATCH, example=USER_PATCH_EXAMPLE),
                "A JSON Merge Patch (RFC 7396). A new email or password revokes the user's tokens.",
            ),
            "delete": operation(
                "deleteUser",
                "Delete a user (admin)",
                [USERS],
                {"204": empty_response("Deleted."), **problems(*ADMIN, 404, examples=[Conflict(LAST_ADMIN)])},
                parameters=[USER_ID],
                description="Deleting the last active admin is a 409.",
            ),
        },
    }


def build_fragment() -> dict[str, Any]:
    return fragment(
        "Herald auth",
        _paths(),
        {
            "Token": TOKEN,
            "TokenRequest": schemas.TOKEN_REQUEST,
            "Jwk": JWK,
            "Jwks": JWKS,
            "User": schemas.USER,
            "UserCreate": schemas.USER_CREATE,
            "UserReplace": schemas.USER_REPLACE,
            "UserPatch": schemas.USER_PATCH,
            "MePatch": schemas.ME_PATCH,
        },
    )

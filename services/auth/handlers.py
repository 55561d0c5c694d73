"""HTTP handlers of the auth service: tokens, users, the JWKS and the verifier's look-up."""

from __future__ import annotations

import hmac
import uuid
from typing import Any

import asyncpg
from aiohttp import web

from services.auth import schemas
from services.auth.accounts import SCHEMA, emit, save_changes
from services.auth.appkeys import PASSWORDS, SIGNING_KEY
from services.auth.repo import UserRepo, public_user
from services.auth.throttle import login_attempt
from services.auth.tokens import issue_token, published_keys
from shared.appkeys import DATABASE, SETTINGS
from shared.authn import principal, public, require_role, unauthorized
from shared.events import USER_DELETED, make_event
from shared.outbox import enqueue
from shared.problems import Conflict, Forbidden, NotFound, Problem, ValidationFailed
from shared.validation import validate
from shared.verifier import INTERNAL_TOKEN_HEADER
from shared.web.json_io import JSON_CONTENT_TYPE, json_response, read_json
from shared.web.paging import decode_cursor, page, parse_limit
from shared.web.params import ITEM_ID, path_uuid, reject_unknown_params
from shared.web.writes import MERGE_PATCH, check_read_only

routes = web.RouteTableDef()

_ADMIN_LOCK = 0x6164_6D6E  # serialises changes that could remove the last admin
BAD_CREDENTIALS = "the email or password is wrong"
LOGIN_REFUSAL = "too many failed logins; try again later"
LAST_ADMIN = "this is the last active admin; make another admin first"


# -- tokens ----------------------------------------------------------------------------------


@routes.post("/v2/requesttoken")
@public
async def request_token(request: web.Request) -> web.Response:
    body = await read_json(request)
    validate(schemas.TOKEN_REQUEST, body)
    settings = request.app[SETTINGS]
    db = request.app[DATABASE]
    email, password = body["email"].strip(), body["password"]
    passwords = request.app[PASSWORDS]
    async with login_attempt(request, email, LOGIN_REFUSAL) as attempt:
        async with db.connection() as conn:
            user = await UserRepo(conn).by_email(email)
        verified = await passwords.verify(user["password_hash"] if user else None, password)
        attempt.matched = verified and user is not None and user["active"]
        attempt.user_id = user["id"] if user else None
    if not attempt.matched or user is None:
        raise unauthorized(BAD_CREDENTIALS, invalid_token=False)
    rehashed = await passwords.hash(password) if passwords.needs_rehash(user["password_hash"]) else None
    if rehashed:
        async with db.connection() as conn:
            await UserRepo(conn).set_password_hash(user["id"], rehashed)
    return json_response(issue_token(request.app[SIGNING_KEY], settings, user))


@routes.get("/v2/.well-known/jwks.json")
@public
async def jwks(request: web.Request) -> web.Response:
    async with request.app[DATABASE].connection() as conn:
        keys = await published_keys(conn, request.app[SETTINGS].token_ttl)
    return json_response({"keys": keys}, headers={"Cache-Control": "public, max-age=300"})


def _require_internal_token(request: web.Request) -> None:
    """Only Herald's services may ask: they send HERALD_INTERNAL_TOKEN (compared in constant
    time, so the answer's timing does not tell how much of a guess was right)."""
    offered = request.headers.get(INTERNAL_TOKEN_HEADER)
    if offered is None:
        raise Problem(
            401,
            f"this look-up is internal to Herald: send {INTERNAL_TOKEN_HEADER}",
            headers={"WWW-Authenticate": 'Herald-Internal realm="herald"'},
        )
    expected = request.app[SETTINGS].internal_token
    if not hmac.compare_digest(offered.encode(), expected.encode()):
        raise Forbidden(f"{INTERNAL_TOKEN_HEADER} is wrong")


@routes.get("/internal/users/{id}/credentials")
@public  # no user token: the internal credential instead
async def credentials(request: web.Request) -> web.Response:
    """For token verifiers (not routed by the edge): the user's credential version."""
    _require_internal_token(request)
    user_id = path_uuid(request, "user")
    async with request.app[DATABASE].connection() as conn:
        found = await UserRepo(conn).credentials(str(user_id))
    if found is None:
        raise NotFound("no such user")
    return json_response({"cv": found[0], "active": found[1]})


# -- users (admin) ---------------------------------------------------------------------------


@routes.get("/v2/user/list")
async def list_users(request: web.Request) -> web.Response:
    require_role(request, "admin")
    reject_unknown_params(request, ("limit", "cursor"))
    limit = parse_limit(request)
    after = None
    if "cursor" in request.query:
        values = decode_cursor(request.query["cursor"])
        try:
            after = str(uuid.UUID(str(values[0])))
        except (ValueError, IndexError):
            raise Problem(400, "cursor is not one this API made") from None
    async with request.app[DATABASE].connection() as conn:
        rows = await UserRepo(conn).page(after, limit + 1)
    rows, headers = page(request, rows, limit, key=lambda row: [str(row["id"])])
    return json_response([public_user(r) for r in rows], headers=headers)


@routes.post("/v2/user/list")
async def create_user(request: web.Request) -> web.Response:
    caller = require_role(request, "admin")
    body = await read_json(request)
    if isinstance(body, dict):
        for name in schemas.READ_ONLY.keys() & body.keys():
            raise Problem(400, f"{name} is read-only and is set by the server")
    validate(schemas.USER_CREATE, body)
    password_hash = await request.app[PASSWORDS].hash(body["password"])
    async with request.app[DATABASE].transaction() as conn:
        user = await UserRepo(conn).create(
            email=body["email"].strip(),
            name=body.get("name", ""),
            password_hash=password_hash,
            roles=body.get("roles", ["member"]),
            active=body.get("active", True),
        )
        await emit(conn, None, user, caller.user_id)
    shown = public_user(user)
    return json_response(shown, status=201, headers={"Location": f"/v2/user/{shown['id']}"})


@routes.get(f"/v2/user/{ITEM_ID}")
async def get_user(request: web.Request) -> web.Response:
    require_role(request, "admin")
    async with request.app[DATABASE].connection() as conn:
        user = await UserRepo(conn).get(path_uuid(request, "user"))
    return json_response(public_user(user))


async def _change_user(
    request: web.Request, schema: dict[str, Any], content_types: tuple[str, ...]
) -> web.Response:
    """PUT and PATCH differ only in their schema: PUT requires every writable field."""
    caller = require_role(request, "admin")
    user_id = path_uuid(request, "user")
    body = await read_json(request, content_types)
    validate(schema, body)
    new_hash = await request.app[PASSWORDS].hash(body["password"]) if body.get("password") else None
    async with request.app[DATABASE].transaction() as conn:
        repo = UserRepo(conn)
        before = await repo.get(user_id, for_update=True)
        check_read_only(body, schemas.READ_ONLY, public_user(before))
        changes: dict[str, Any] = {}
        for field in ("email", "name", "roles", "active"):
            if field in body:
                value = body[field]
                changes[field] = "" if value is None else (value.strip() if field == "email" else value)
        if new_hash:
            changes["password_hash"] = new_hash
        changes = {k: v for k, v in changes.items() if k == "password_hash" or before[k] != v}
        await _guard_last_admin(conn, before, changes)
        after = await save_changes(conn, before, changes, caller.user_id)
    return json_response(public_user(after))


@routes.put(f"/v2/user/{ITEM_ID}")
async def put_user(request: web.Request) -> web.Response:
    return await _change_user(request, schemas.USER_REPLACE, (JSON_CONTENT_TYPE,))


@routes.patch(f"/v2/user/{ITEM_ID}")
async def patch_user(request: web.Request) -> web.Response:
    return await _change_user(request, schemas.USER_PATCH, MERGE_PATCH)


async def _guard_last_admin(
    conn: asyncpg.Connection, before: dict[str, Any], changes: dict[str, Any] | None
) -> None:
    """Refuse to remove, disable or demote the last active admin: nobody could manage users."""
    if not (before["active"] and "admin" in before["roles"]):
        return
    still_admin = (
        changes is not None
        and changes.get("active", True)
        and "admin" in changes.get("roles", before["roles"])
    )
    if still_admin:
        return
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _ADMIN_LOCK)
    if await UserRepo(conn).other_active_admins(before["id"]) == 0:
        raise Conflict(LAST_ADMIN)


@routes.delete(f"/v2/user/{ITEM_ID}")
async def delete_user(request: web.Request) -> web.Response:
    caller = require_role(request, "admin")
    user_id = path_uuid(request, "user")
    async with request.app[DATABASE].transaction() as conn:
        repo = UserRepo(conn)
        before = await repo.get(user_id, for_update=True)
        await _guard_last_admin(conn, before, None)
        await repo.delete(user_id)
        await enqueue(conn, SCHEMA, make_event(USER_DELETED, {"id": str(user_id)}, caller.user_id))
    return web.Response(status=204)


# -- the caller's own account ----------------------------------------------------------------


@routes.get("/v2/user/me")
async def get_me(request: web.Request) -> web.Response:
    async with request.app[DATABASE].connection() as conn:
        user = await UserRepo(conn).get(principal(request).user_id)
    return json_response(public_user(user))


@routes.patch("/v2/user/me")
async def patch_me(request: web.Request) -> web.Response:
    caller = principal(request)
    body = await read_json(request, MERGE_PATCH)
    validate(schemas.ME_PATCH, body)
    db, passwords = request.app[DATABASE], request.app[PASSWORDS]
    async with db.connection() as conn:
        current = await UserRepo(conn).get(caller.user_id)
    check_read_only(body, schemas.READ_ONLY, public_user(current))
    sensitive = "email" in body or "password" in body
    if sensitive:
        if not body.get("currentPassword"):
            raise ValidationFailed(
                [{"field": "currentPassword", "message": "is required to change email or password"}]
            )
        async with login_attempt(
            request, current["email"], "too many wrong passwords; try again later"
        ) as attempt:
            attempt.matched = await passwords.verify(current["password_hash"], body["currentPassword"])
            attempt.user_id = current["id"]
        if not attempt.matched:
            raise Forbidden("currentPassword is wrong")
    new_hash = await passwords.hash(body["password"]) if "password" in body else None
    async with db.transaction() as conn:
        repo = UserRepo(conn)
        before = await repo.get(caller.user_id, for_update=True)
        if sensitive and before["credential_version"] != current["credential_version"]:
            raise Conflict("your credentials changed meanwhile; request a new token and retry")
        changes: dict[str, Any] = {}
        if "name" in body and (body["name"] or "") != before["name"]:
            changes["name"] = body["name"] or ""
        if "email" in body and body["email"].strip() != before["email"]:
            changes["email"] = body["email"].strip()
        if new_hash:
            changes["password_hash"] = new_hash
        after = await save_changes(conn, before, changes, caller.user_id)
    return json_response(public_user(after))

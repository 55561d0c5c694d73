"""Bearer-token authentication for aiohttp apps: the same check in every service (the edge
looks at no token), so a service reached without the edge is no weaker."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from shared.appkeys import PUBLIC_PATHS, VERIFIER
from shared.problems import Forbidden, Problem, problem_answer
from shared.verifier import InvalidToken, Principal, VerifierUnavailable

PRINCIPAL = web.RequestKey("principal", Principal)
CHALLENGE = 'Bearer realm="herald"'


def unauthorized(detail: str, *, invalid_token: bool = True) -> Problem:
    challenge = CHALLENGE
    if invalid_token:
        safe = detail.replace('"', "'")
        challenge += f', error="invalid_token", error_description="{safe}"'
    return Problem(401, detail, headers={"WWW-Authenticate": challenge})


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("the Authorization header must be 'Bearer <token>'")
    return token.strip()


async def authenticate(request: web.Request) -> Principal:
    token = bearer_token(request)
    if token is None:
        raise unauthorized("this request needs a bearer token", invalid_token=False)
    try:
        return await request.app[VERIFIER].verify(token)
    except InvalidToken as exc:
        raise unauthorized(str(exc)) from None
    except VerifierUnavailable:
        raise Problem(
            503, "tokens cannot be checked right now; try again shortly", headers={"Retry-After": "2"}
        ) from None


def public(handler: Any) -> Any:
    """Mark a route handler as needing no token."""
    handler.herald_public = True
    return handler


def _is_public(request: web.Request) -> bool:
    return (
        (request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers)
        or request.path in request.app[PUBLIC_PATHS]
        or getattr(request.match_info.handler, "herald_public", False)
    )


@web.middleware
async def problem_and_authentication_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """The token check (except on public paths and CORS preflights) and problem+json answers
    in one layer: every error, a refused token's included, answered as problem+json."""
    try:
        if not _is_public(request):
            request[PRINCIPAL] = await authenticate(request)
        return await handler(request)
    except Exception as exc:
        return problem_answer(request, exc)


def principal(request: web.Request) -> Principal:
    return request[PRINCIPAL]


def require_role(request: web.Request, role: str) -> Principal:
    caller = principal(request)
    if not caller.has_role(role):
        raise Forbidden(f"this needs the {role} role")
    return caller

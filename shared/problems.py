"""RFC 9457 problem details: the one error shape of every Herald response, and the domain
errors that repositories raise and the error middleware turns into it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web

from shared.db import database_unavailable
from shared.logging import request_id_var

log = logging.getLogger("herald.errors")

PROBLEM_TYPE_BASE = "https://herald.dev/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"
DATABASE_RETRY_AFTER = "2"  # seconds: a pool replaces a lost connection at once; a restart takes a few
# RFC 9110's names where Python 3.11's HTTPStatus still has the older ones.
_TITLES = {422: "Unprocessable Content"}


class Problem(Exception):
    """An error answered as problem+json. Raise it anywhere in a handler."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        type_: str | None = None,
        errors: Sequence[Mapping[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or _TITLES.get(status) or HTTPStatus(status).phrase
        self.type = type_ or PROBLEM_TYPE_BASE + self.title.lower().replace(" ", "-")
        self.errors = list(errors) if errors else None
        self.headers = dict(headers or {})


class NotFound(Problem):
    def __init__(self, detail: str = "no such resource") -> None:
        super().__init__(404, detail)


class Conflict(Problem):
    def __init__(self, detail: str) -> None:
        super().__init__(409, detail)


class Forbidden(Problem):
    def __init__(self, detail: str = "you may not do this") -> None:
        super().__init__(403, detail)


class ValidationFailed(Problem):
    def __init__(self, errors: Sequence[Mapping[str, str]], detail: str | None = None) -> None:
        super().__init__(
            422,
            detail or "; ".join(f"{e['field']}: {e['message']}" for e in errors),
            type_=PROBLEM_TYPE_BASE + "validation-failed",
            errors=errors,
        )


def with_article(noun: str) -> str:
    """`noun` after "a" or "an", chosen by how it is said: "an event", "a user", "an approved
    event", "a location". Messages that interpolate a type or state name use it; the sounds are
    guessed from the spelling, with the common exceptions ("a user", "an hour")."""
    word = noun.lower()
    consonant_sound = word.startswith(("eu", "uni", "use", "usu", "uti", "uu", "one"))
    silent_h = word.startswith(("hour", "honest", "honor", "honour", "heir"))
    vowel = word[:1] in ("a", "e", "i", "o", "u")
    return f"{'an' if (vowel and not consonant_sound) or silent_h else 'a'} {noun}"


def problem_body(problem: Problem, instance: str) -> dict[str, Any]:
    """The problem+json document of `problem`; `instance` is the request id."""
    body: dict[str, Any] = {
        "type": problem.type,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": instance,
    }
    if problem.errors:
        body["errors"] = problem.errors
    return body


def problem_response(problem: Problem) -> web.Response:
    body = problem_body(problem, request_id_var.get() or "")
    return web.Response(
        body=orjson.dumps(body),
        status=problem.status,
        content_type=PROBLEM_CONTENT_TYPE,
        headers=problem.headers,
    )


_HTTP_DETAILS = {
    404: "no route matches this path",
    405: "this method is not allowed here",
    413: "the request body is too large",
}


def client_went_away(request: web.Request, exc: BaseException) -> bool:
    """The client closed its connection before the answer (in the middle of its body, say):
    nothing to answer and nothing of ours that failed."""
    return isinstance(exc, ConnectionResetError | asyncio.CancelledError) and request.transport is None


def problem_answer(request: web.Request, exc: Exception) -> web.Response:
    """The problem+json answer for what a handler raised; raises it again when it is not an
    error (an HTTPException below 400: a redirect) or when the client went away (the request
    log counts it). Call it from an `except` block."""
    if client_went_away(request, exc):
        raise exc
    if isinstance(exc, Problem):
        return problem_response(exc)
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        if isinstance(exc, web.HTTPMethodNotAllowed):
            headers["Allow"] = ", ".join(sorted(exc.allowed_methods))  # aiohttp's has no spaces
        detail = _HTTP_DETAILS.get(exc.status) or exc.text or exc.reason
        return problem_response(Problem(exc.status, detail, headers=headers))
    if database_unavailable(exc):
        log.warning(
            "database unavailable on %s %s: %s: %s", request.method, request.path, type(exc).__name__, exc
        )
        return problem_response(
            Problem(
                503,
                "the database connection was lost or could not be made; try again shortly",
                headers={"Retry-After": DATABASE_RETRY_AFTER},
            )
        )
    log.exception("unhandled error on %s %s", request.method, request.path)
    return problem_response(Problem(500, "an unexpected error occurred; it has been logged"))

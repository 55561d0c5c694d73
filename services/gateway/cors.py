"""CORS as DESIGN says: listed origins (or `*`), no credentials mode (tokens travel in a
header), preflights answered here without a token."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from shared.problems import Problem, problem_response

ALLOW_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
ALLOW_HEADERS = "Authorization, Content-Type, If-Match, If-None-Match, Idempotency-Key, X-Request-ID"
EXPOSE_HEADERS = (
    "ETag, Location, Link, Retry-After, X-Request-ID, X-Total-Count, "
    "RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset"
)
MAX_AGE = "600"


def cors_handlers(origins: tuple[str, ...]) -> tuple[Any, Any]:
    """The preflight middleware, and the response-prepare hook that decorates every answer."""
    any_origin = "*" in origins
    allowed = frozenset(origins)

    def allow_origin(origin: str | None) -> str | None:
        if origin is None:
            return None
        if any_origin:
            return "*"
        return origin if origin in allowed else None

    @web.middleware
    async def cors(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
            return await handler(request)  # not a preflight: on_prepare decorates the answer
        origin = request.headers.get("Origin")
        allowed_origin = allow_origin(origin)
        if allowed_origin is None:
            response: web.StreamResponse = problem_response(
                Problem(403, f"the origin {origin} may not call this API")
            )
            response.headers["Vary"] = "Origin"
            return response
        return web.Response(
            status=204,
            headers={
                "Access-Control-Allow-Origin": allowed_origin,
                "Access-Control-Allow-Methods": ALLOW_METHODS,
                "Access-Control-Allow-Headers": ALLOW_HEADERS,
                "Access-Control-Max-Age": MAX_AGE,
                "Vary": "Origin",
            },
        )

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        """Runs just before any response's headers go out, streamed ones included."""
        if "Access-Control-Allow-Methods" in response.headers:
            return  # a preflight answer, already complete
        vary = response.headers.get("Vary")
        response.headers["Vary"] = f"{vary}, Origin" if vary else "Origin"
        allowed_origin = allow_origin(request.headers.get("Origin"))
        if allowed_origin is not None:
            response.headers["Access-Control-Allow-Origin"] = allowed_origin
            response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS

    return cors, on_prepare

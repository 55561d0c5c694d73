"""Query and path parameters."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from aiohttp import web

from shared.problems import NotFound, Problem


def reject_unknown_params(request: web.Request, allowed: Iterable[str]) -> None:
    unknown = sorted(set(request.query) - set(allowed))
    if unknown:
        noun = "parameter" if len(unknown) == 1 else "parameters"
        raise Problem(400, f"unknown query {noun}: {', '.join(unknown)}")


def path_uuid(request: web.Request, what: str, name: str = "id") -> uuid.UUID:
    """The UUID in the path parameter `name`; anything else names no `what`: a 404."""
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError:
        raise NotFound(f"no such {what}") from None

"""Query and path parameters."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from aiohttp import web

from shared.problems import NotFound, Problem

# The path segment of an item's id, as in f"/v2/user/{ITEM_ID}": any segment but "list" (the
# collection's own path beside it) and "me" (the caller's own user). So a method those lack
# (DELETE /v2/event/list, DELETE /v2/user/me) is the router's 405 with an Allow header, not a
# 404 for an item named "list" or "me".
ITEM_ID = "{id:(?!(?:list|me)$)[^/]+}"


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

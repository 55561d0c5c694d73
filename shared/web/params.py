"""Query and path parameters."""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from shared.problems import Problem


def reject_unknown_params(request: web.Request, allowed: Iterable[str]) -> None:
    unknown = sorted(set(request.query) - set(allowed))
    if unknown:
        noun = "parameter" if len(unknown) == 1 else "parameters"
        raise Problem(400, f"unknown query {noun}: {', '.join(unknown)}")

"""Conditional requests: ETags from versions, If-Match and If-None-Match."""

from __future__ import annotations

from aiohttp import web

from shared.problems import Problem


def etag(version: int) -> str:
    """The ETag of a resource is its version."""
    return f'"{version}"'


def etag_matches(header: str, version: int, *, weak: bool) -> bool:
    """`If-Match` compares strongly, `If-None-Match` weakly (RFC 9110 §13.1); `*` matches."""
    current = etag(version)
    for tag in (part.strip() for part in header.split(",")):
        if tag == "*" or tag == current or (weak and tag.removeprefix("W/") == current):
            return True
    return False


def check_if_match(request: web.Request, version: int, what: str) -> None:
    """`If-Match` naming another version: a 412 and nothing is written (strong comparison)."""
    header = request.headers.get("If-Match")
    if header is not None and not etag_matches(header, version, weak=False):
        raise Problem(412, f"the {what} changed since that ETag; it is now {etag(version)}: GET it and retry")

"""Conditional requests: ETags from versions, If-Match and If-None-Match."""

from __future__ import annotations


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

"""What PUT and PATCH share: the JSON Merge Patch media types and merge (RFC 7396), and
read-only fields."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shared.problems import Problem
from shared.web.json_io import JSON_CONTENT_TYPE

MERGE_PATCH_CONTENT_TYPE = "application/merge-patch+json"
MERGE_PATCH = (MERGE_PATCH_CONTENT_TYPE, JSON_CONTENT_TYPE)  # what a PATCH body may be sent as


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: objects merge recursively, null removes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = merge_patch(result.get(name), value)
    return result


def check_read_only(body: dict[str, Any], read_only: Iterable[str], shown: dict[str, Any]) -> None:
    """Read-only fields may be sent back unchanged (a GET body round-trips) and are dropped from
    `body`; a different value is a 400. `shown` is the representation as GET shows it."""
    for name in read_only:
        if name in body and body.pop(name) != shown.get(name):
            raise Problem(400, f"{name} is read-only and cannot be changed")

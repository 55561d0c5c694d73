"""Keyset paging on (created_at, id): a page starts after the last row of the page before, so
rows written meanwhile neither repeat nor shift a page, and no OFFSET is scanned."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any


def after_created(param: int, *, newest_first: bool = False) -> str:
    """The SQL condition, order and limit of a page: the rows after a page's last row on
    (created_at, id). `$param` and `$param + 1` are that row's created_at and id (NULL on the
    first page), `$param + 2` the limit: pass them as `keyset_args`."""
    op, order = ("<", " DESC") if newest_first else (">", "")
    return (
        f"(${param}::timestamptz IS NULL OR (created_at, id) {op} (${param}, ${param + 1}::uuid))"
        f" ORDER BY created_at{order}, id{order} LIMIT ${param + 2}"
    )


def keyset_args(after: tuple[datetime, uuid.UUID] | None, limit: int) -> tuple[Any, ...]:
    """The parameters of `after_created`: the last row's (created_at, id), None on the first page."""
    return (*(after or (None, None)), limit)

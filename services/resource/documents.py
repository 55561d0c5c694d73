"""From request bodies to stored documents and from rows to representations, for any type."""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Any

from services.resource.types import COLUMNS, ResourceType
from shared.events import format_time
from shared.problems import Problem, ValidationFailed
from shared.validation import BIGINT, TIME_MESSAGE, parse_time, validate


def parse_uuid(raw: Any) -> str | None:
    try:
        return str(uuid.UUID(str(raw)))
    except ValueError:
        return None


def check_read_only(rtype: ResourceType, body: dict[str, Any], current: dict[str, Any] | None) -> None:
    """Read-only fields may come back unchanged (a GET body round-trips); different is a 400."""
    if rtype.read_only.isdisjoint(body):  # the usual create: no set made
        return
    for name in rtype.read_only & body.keys():
        value = body.pop(name)
        if current is None or value != current.get(name):
            raise Problem(400, f"{name} is read-only and is set by the server")


def writable_doc(rtype: ResourceType, body: Any) -> dict[str, Any]:
    """The stored document of a valid body: schema checked, times and ids normalized, the
    type's own rules applied. Every error is a 422 naming its field."""
    validate(rtype.input_schema, body)
    doc = {name: value for name, value in body.items() if value is not None}
    for name, spec in rtype.writable.items():
        if name not in doc and "default" in spec:
            doc[name] = spec["default"]
    errors: list[dict[str, str]] = []
    kinds = rtype.kinds
    for name, value in doc.items():
        kind = kinds[name]
        if kind == "integer":
            value = doc[name] = int(value)  # 12.0 is an integer to JSON Schema; show it as 12
            if not BIGINT[0] <= value <= BIGINT[1]:  # what a filter compares it with
                errors.append({"field": name, "message": f"must be from {BIGINT[0]} to {BIGINT[1]}"})
        elif kind == "time":
            moment = parse_time(value)
            if moment is None:
                errors.append({"field": name, "message": TIME_MESSAGE})
            else:
                doc[name] = format_time(moment)
        elif kind == "uuid":
            normalized = parse_uuid(value)
            if normalized is None:
                errors.append({"field": name, "message": "must be a UUID"})
            else:
                doc[name] = normalized
    if not errors:
        for check in rtype.checks:
            errors.extend(check(doc))
    if errors:
        raise ValidationFailed(errors)
    return doc


@functools.cache
def _shape(rtype: ResourceType) -> tuple[tuple[str, str | None, bool], ...]:
    """Each declared field of the representation: its name, its column (None: in `doc`), and
    whether it is a list (absent, it shows as [] rather than null)."""
    return tuple(
        (name, COLUMNS.get(name), spec.get("type") == "array") for name, spec in rtype.properties.items()
    )


def representation(rtype: ResourceType, row: Any) -> dict[str, Any]:
    """The resource as GET returns it: every declared field, absent ones as null (lists empty)."""
    doc = row["doc"]
    shown: dict[str, Any] = {}
    moment: Any = None
    text = ""
    for name, column, is_array in _shape(rtype):
        if column is not None:
            value = row[column]
            if isinstance(value, datetime):
                if value is not moment:  # a new row's createdAt is its updatedAt: formatted once
                    moment, text = value, format_time(value)
                value = text
            elif isinstance(value, uuid.UUID):
                value = str(value)
            shown[name] = value
        elif name in doc:
            shown[name] = doc[name]
        else:
            shown[name] = [] if is_array else None
    return shown

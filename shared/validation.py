"""Request bodies checked against JSON Schema (2020-12, the dialect of OpenAPI 3.1), with
errors that name each field and never echo the value (it may be a password, or a header that
carries a receiver's token): messages come from the schema's keywords, never from the body.

A valid body (the common case) is accepted by a compiled validator (fastjsonschema, about 15
times faster); only a body it refuses goes through jsonschema, which decides and names the
fields. The compiled one is used only for schemas made of keywords it reads exactly as
jsonschema does, or more strictly (a stricter refusal just falls back): anything else is
checked by jsonschema alone."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import fastjsonschema
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from shared.problems import Problem, ValidationFailed, with_article

log = logging.getLogger("herald.validation")

FastCheck = Callable[[Any], Any]
_VALIDATORS: dict[int, tuple[dict[str, Any], Draft202012Validator, FastCheck | None]] = {}

# Keywords the compiled validator reads as jsonschema's 2020-12 validator does (formats are not
# asserted by either), or more strictly: `pattern`'s `$` is an end of string there, `integer`
# is an int (12.0 is refused, then accepted by jsonschema), `uniqueItems` takes 1 for True.
_SUBSCHEMA_KEYWORDS = {"properties", "additionalProperties", "items"}
_PLAIN_KEYWORDS = {
    "type", "required", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "minItems", "maxItems", "uniqueItems", "pattern", "format",
    "title", "description", "readOnly", "writeOnly", "default", "examples", "deprecated",
}  # fmt: skip


def _compilable(schema: Any) -> bool:
    """Only keywords the compiled validator reads as jsonschema does (see above)."""
    if not isinstance(schema, dict):
        return isinstance(schema, bool)
    for keyword, value in schema.items():
        if keyword in _PLAIN_KEYWORDS or keyword.startswith("x-"):
            if keyword in {"exclusiveMinimum", "exclusiveMaximum"} and isinstance(value, bool):
                return False  # draft 4's boolean form, not 2020-12's number
            continue
        if keyword in {"enum", "const"}:
            # Python's `in` and == take True for 1: only strings compare the same in both.
            values = value if keyword == "enum" else [value]
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                return False
        elif keyword == "properties":
            if not isinstance(value, dict) or not all(_compilable(s) for s in value.values()):
                return False
        elif keyword in {"additionalProperties", "items"}:
            if not _compilable(value):  # `items` as a list is not 2020-12
                return False
        else:
            return False
    return True


def _fast_check(schema: dict[str, Any]) -> FastCheck | None:
    if not _compilable(schema):
        return None
    try:
        # No defaults filled in (it would change the body) and no formats (jsonschema asserts none).
        return fastjsonschema.compile(schema, use_default=False, use_formats=False, detailed_exceptions=False)
    except Exception as exc:  # jsonschema alone checks it then
        log.warning("schema %s not compiled: %r", schema.get("title"), exc)
        return None


def _validator(schema: dict[str, Any]) -> tuple[Draft202012Validator, FastCheck | None]:
    """Schemas are module constants: one validator each, found by identity (no hashing of the
    schema per request). The schema is kept alive with it, so an id is never reused."""
    entry = _VALIDATORS.get(id(schema))
    if entry is None:
        entry = _VALIDATORS[id(schema)] = (schema, Draft202012Validator(schema), _fast_check(schema))
    return entry[1], entry[2]


def _field(path: Any) -> str:
    return ".".join(str(p) for p in path)


def _count(number: Any, noun: str, plural: str | None = None) -> str:
    """`1 character`, `2 characters`."""
    return f"{number} {noun}" if number == 1 else f"{number} {plural or noun + 's'}"


_TEMPLATES: dict[str, Callable[[Any], str]] = {
    "minLength": lambda n: f"must be at least {_count(n, 'character')} long",
    "maxLength": lambda n: f"must be at most {_count(n, 'character')} long",
    "minimum": "must be at least {}".format,
    "maximum": "must be at most {}".format,
    "exclusiveMinimum": "must be more than {}".format,
    "exclusiveMaximum": "must be less than {}".format,
    "minItems": lambda n: f"must have at least {_count(n, 'item')}",
    "maxItems": lambda n: f"must have at most {_count(n, 'item')}",
    "minProperties": lambda n: f"must have at least {_count(n, 'entry', 'entries')}",
    "maxProperties": lambda n: f"must have at most {_count(n, 'entry', 'entries')}",
    "multipleOf": "must be a multiple of {}".format,
    "uniqueItems": lambda _: "must not repeat an item",
    "format": lambda name: f"must be {with_article('valid ' + str(name))}",
    "const": "must be {!r}".format,
}


def _describe(error: ValidationError) -> list[dict[str, str]]:
    here = _field(error.absolute_path)
    prefix = f"{here}." if here else ""
    v, expected = error.validator, error.validator_value
    if v == "required":
        instance = error.instance if isinstance(error.instance, dict) else {}
        return [
            {"field": prefix + name, "message": "is required"} for name in expected if name not in instance
        ]
    if v == "additionalProperties":
        props = error.schema.get("properties", {})
        instance = error.instance if isinstance(error.instance, dict) else {}
        return [
            {"field": prefix + name, "message": "is not a field of this resource"}
            for name in instance
            if name not in props
        ]
    if v == "type":
        kinds = [expected] if isinstance(expected, str) else list(expected)
        message = "must be of type " + " or ".join(kinds)
    elif v == "enum":
        message = "must be one of " + ", ".join(str(e) for e in expected)
    elif v == "pattern":
        message = error.schema.get("x-pattern-message", "is not in the expected format")
    elif v in _TEMPLATES:
        message = _TEMPLATES[str(v)](expected)
    else:
        # Never jsonschema's own message: it quotes the value (a password, a header's token).
        message = f"is invalid ({v})"
    return [{"field": here or "(body)", "message": message}]


def _accepts(fast: FastCheck, body: Any) -> bool:
    try:
        fast(body)
    except Exception:  # refused (or could not tell): jsonschema decides and names the fields
        return False
    return True


def validate(schema: dict[str, Any], body: Any) -> None:
    """Raise a 400 when the body is not an object, a 422 naming each bad field otherwise."""
    if schema.get("type") == "object" and not isinstance(body, dict):
        raise Problem(400, "the body must be a JSON object")
    validator, fast = _validator(schema)
    if fast is not None and _accepts(fast, body):
        return
    errors: list[dict[str, str]] = []
    for error in sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path))):
        for item in _describe(error):
            if item not in errors:  # one `required` error comes per missing field
                errors.append(item)
    if errors:
        raise ValidationFailed(errors)


# -- values read from text: queries, cursors, and body fields beyond what a schema says ---------

BIGINT = (-(2**63), 2**63 - 1)  # PostgreSQL's bigint; what a number in a jsonb document is compared as
INTEGER = (-(2**31), 2**31 - 1)  # PostgreSQL's integer column
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]{1,25}")  # ASCII digits only: no `1_000`, no other scripts
TIME_MESSAGE = "must be an RFC 3339 time with an offset, in years 1 to 9999 once in UTC"


def parse_time(raw: Any) -> datetime | None:
    """An RFC 3339 time with its offset (`Z` or `+02:00`) whose UTC value falls in years 1 to
    9999 (what Python's datetime holds: `0001-01-01T00:00:00+14:00` parses, yet converting it
    to UTC overflows, in the code and in asyncpg alike); None otherwise."""
    if not isinstance(raw, str):
        return None
    try:
        moment = datetime.fromisoformat(raw)
        if moment.tzinfo is None:
            return None
        moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return moment


def parse_integer(raw: str, bounds: tuple[int, int] = BIGINT) -> int | None:
    """A whole number in ASCII digits within `bounds` (PostgreSQL's bigint by default: orjson
    and asyncpg refuse what lies beyond with an exception, not an answer); None otherwise."""
    if not _WHOLE_NUMBER.fullmatch(raw):
        return None
    value = int(raw)
    return value if bounds[0] <= value <= bounds[1] else None

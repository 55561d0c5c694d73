"""Request bodies checked against JSON Schema (2020-12, the dialect of OpenAPI 3.1), with
errors that name each field and never echo the value (it may be a password)."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from shared.problems import Problem, ValidationFailed

_VALIDATORS: dict[int, tuple[dict[str, Any], Draft202012Validator]] = {}


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    """Schemas are module constants: one validator each, found by identity (no hashing of the
    schema per request). The schema is kept alive with it, so an id is never reused."""
    entry = _VALIDATORS.get(id(schema))
    if entry is None:
        entry = _VALIDATORS[id(schema)] = (schema, Draft202012Validator(schema))
    return entry[1]


def _field(path: Any) -> str:
    return ".".join(str(p) for p in path)


_TEMPLATES = {
    "minLength": "must be at least {} characters long",
    "maxLength": "must be at most {} characters long",
    "minimum": "must be at least {}",
    "maximum": "must be at most {}",
    "exclusiveMinimum": "must be more than {}",
    "exclusiveMaximum": "must be less than {}",
    "minItems": "must have at least {} items",
    "maxItems": "must have at most {} items",
    "uniqueItems": "must not repeat an item",
    "format": "must be a valid {}",
    "const": "must be {!r}",
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
        message = _TEMPLATES[str(v)].format(expected)
    else:
        message = "is invalid" if error.schema.get("writeOnly") else error.message
    return [{"field": here or "(body)", "message": message}]


def validate(schema: dict[str, Any], body: Any) -> None:
    """Raise a 400 when the body is not an object, a 422 naming each bad field otherwise."""
    if schema.get("type") == "object" and not isinstance(body, dict):
        raise Problem(400, "the body must be a JSON object")
    validator = _validator(schema)
    errors: list[dict[str, str]] = []
    for error in sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path))):
        for item in _describe(error):
            if item not in errors:  # one `required` error comes per missing field
                errors.append(item)
    if errors:
        raise ValidationFailed(errors)

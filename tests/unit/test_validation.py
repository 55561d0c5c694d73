from __future__ import annotations

import pytest

from services.auth import schemas
from shared.problems import Problem, ValidationFailed, with_article
from shared.validation import INTEGER, parse_integer, parse_time, validate


def test_each_bad_field_is_named_once_and_values_are_not_echoed() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate(schemas.USER_CREATE, {"email": "nope", "password": "hunter2", "roles": [], "x": 1})
    errors = caught.value.errors
    assert errors is not None
    assert sorted(e["field"] for e in errors) == ["email", "password", "roles", "x"]
    assert "hunter2" not in str(errors) and caught.value.status == 422


def test_missing_fields_are_each_required() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate(schemas.TOKEN_REQUEST, {})
    assert caught.value.errors == [
        {"field": "email", "message": "is required"},
        {"field": "password", "message": "is required"},
    ]


def test_messages_count_in_english() -> None:
    """One of a thing is singular: "at least 1 item", never "1 items"."""
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 2},
            "tags": {"type": "array", "minItems": 1},
            "pair": {"type": "array", "maxItems": 2},
            "headers": {"type": "object", "maxProperties": 1},
        },
    }
    with pytest.raises(ValidationFailed) as caught:
        validate(schema, {"name": "", "tags": [], "pair": [1, 2, 3], "headers": {"a": "1", "b": "2"}})
    assert sorted((e["field"], e["message"]) for e in caught.value.errors or ()) == [
        ("headers", "must have at most 1 entry"),
        ("name", "must be at least 1 character long"),
        ("pair", "must have at most 2 items"),
        ("tags", "must have at least 1 item"),
    ]
    with pytest.raises(ValidationFailed) as caught:
        validate(schema, {"name": "abc"})
    assert caught.value.errors == [{"field": "name", "message": "must be at most 2 characters long"}]


@pytest.mark.parametrize(
    ("noun", "expected"),
    [
        ("event", "an event"),
        ("approved event", "an approved event"),
        ("location", "a location"),
        ("user", "a user"),
        ("draft event", "a draft event"),
        ("pending or rejected", "a pending or rejected"),
        ("unknown field", "an unknown field"),
        ("hour", "an hour"),
        ("valid uuid", "a valid uuid"),
    ],
)
def test_with_article_chooses_a_or_an_by_sound(noun: str, expected: str) -> None:
    assert with_article(noun) == expected


def test_non_objects_are_a_400() -> None:
    with pytest.raises(Problem) as caught:
        validate(schemas.TOKEN_REQUEST, ["email"])
    assert caught.value.status == 400


def test_valid_bodies_pass() -> None:
    validate(schemas.USER_CREATE, {"email": "a@b.example", "password": "long-enough", "roles": ["member"]})


def _outcome(schema: dict[str, object], body: object) -> object:
    try:
        validate(schema, body)
    except Problem as exc:
        return (exc.status, getattr(exc, "errors", None))
    return "valid"


@pytest.mark.parametrize(
    "body",
    [
        {"title": "t", "startsAt": "2027-06-01T18:00:00Z", "endsAt": "2027-06-01T20:00:00Z"},
        {"title": "", "startsAt": "x", "endsAt": 3, "capacity": 12.0, "tags": ["a", "a"]},
        {"title": "t", "startsAt": "s", "endsAt": "e", "capacity": True, "tags": [1, True]},
        {"title": "t", "startsAt": "s", "endsAt": "e", "capacity": -1, "description": None},
        {"title": "t" * 201, "startsAt": "s", "endsAt": "e", "locationId": "not-a-uuid", "x": 1},
        {"title": "t", "startsAt": "s", "endsAt": "e", "tags": ["x"] * 21, "capacity": 1000001},
        {"title": None, "startsAt": "s", "endsAt": "e", "tags": "nope", "capacity": "1"},
        {"title": "t", "startsAt": "s", "endsAt": "e", "capacity": 5.5, "tags": [""]},
        {},
    ],
)
def test_the_compiled_validator_decides_as_jsonschema(body: dict[str, object]) -> None:
    """Same outcome, same errors, with the compiled fast path and with jsonschema alone."""
    from services.resource.types import TYPES
    from shared import validation

    for rtype in TYPES:
        schema = rtype.input_schema
        validation._validator(schema)
        fast = _outcome(schema, dict(body))
        kept = validation._VALIDATORS[id(schema)]
        validation._VALIDATORS[id(schema)] = (kept[0], kept[1], None)
        try:
            slow = _outcome(schema, dict(body))
        finally:
            validation._VALIDATORS[id(schema)] = kept
        assert fast == slow
        assert kept[2] is not None  # the resource types are compiled


def test_validation_leaves_the_body_as_it_was() -> None:
    """No default is filled in (location's timezone has one): the caller decides."""
    from services.resource.types import TYPES

    (location,) = [t for t in TYPES if t.name == "location"]
    body = {"name": "Hall"}
    validate(location.input_schema, body)
    assert body == {"name": "Hall"}


@pytest.mark.parametrize(
    ("schema", "body"),
    [
        ({"type": "object", "maxProperties": 1}, {"a": "s3cret-1", "b": "s3cret-2"}),
        ({"type": "object", "minProperties": 3}, {"a": "s3cret-1"}),
        ({"type": "object", "properties": {"n": {"multipleOf": 7}}}, {"n": 123456}),
        ({"type": "object", "properties": {"p": {"not": {"type": "string"}}}}, {"p": "s3cret"}),
        ({"type": "object", "properties": {"p": {"oneOf": [{"minLength": 99}]}}}, {"p": "s3cret"}),
        ({"type": "object", "propertyNames": {"maxLength": 2}}, {"s3cret-name": 1}),
        ({"type": "object", "dependentRequired": {"a": ["b"]}}, {"a": "s3cret"}),
    ],
)
def test_no_keyword_echoes_the_value(schema: dict[str, object], body: dict[str, object]) -> None:
    """jsonschema's own messages quote the instance; the problem's must not (a header value
    is often a receiver's token)."""
    with pytest.raises(ValidationFailed) as caught:
        validate(schema, body)
    shown = str(caught.value.errors) + caught.value.detail
    assert "s3cret" not in shown and "123456" not in shown, shown


@pytest.mark.parametrize(
    ("raw", "valid"),
    [
        ("2027-03-01T18:00:00+01:00", True),
        ("0001-01-01T00:00:00Z", True),
        ("0001-01-01T00:00:00-12:00", True),  # 12:00 UTC on the first day
        ("9999-12-31T23:59:59.999999Z", True),
        ("0001-01-01T00:00:00+14:00", False),  # the year 0 once in UTC
        ("9999-12-31T23:00:00-12:00", False),  # the year 10000 once in UTC
        ("0000-01-01T00:00:00Z", False),
        ("2027-03-01T18:00:00", False),  # no offset
        (12, False),
    ],
)
def test_times_are_valid_only_within_years_1_to_9999_in_utc(raw: object, valid: bool) -> None:
    assert (parse_time(raw) is not None) is valid


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12", 12),
        ("-5", -5),
        (str(2**63 - 1), 2**63 - 1),
        (str(-(2**63)), -(2**63)),
        (str(2**63), None),
        (str(-(2**63) - 1), None),
        ("9" * 5000, None),
        ("1_000", None),
        ("\u0661\u0662", None),  # digits of another script: int() reads them
        (" 12", None),
        ("", None),
    ],
)
def test_integers_are_ascii_digits_within_bigint(raw: str, expected: int | None) -> None:
    assert parse_integer(raw) == expected


def test_an_integer_column_has_a_narrower_range() -> None:
    assert parse_integer(str(2**31), INTEGER) is None and parse_integer(str(2**31 - 1), INTEGER) == 2**31 - 1

from __future__ import annotations

import pytest

from services.auth import schemas
from shared.problems import Problem, ValidationFailed
from shared.validation import validate


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


def test_non_objects_are_a_400() -> None:
    with pytest.raises(Problem) as caught:
        validate(schemas.TOKEN_REQUEST, ["email"])
    assert caught.value.status == 400


def test_valid_bodies_pass() -> None:
    validate(schemas.USER_CREATE, {"email": "a@b.example", "password": "long-enough", "roles": ["member"]})

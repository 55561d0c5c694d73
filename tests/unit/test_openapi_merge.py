"""Merging OpenAPI fragments: union of paths, webhooks, components and tags; the same name
defined twice differently is refused; the first fragment gives info and security."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from services.auth.openapi import build_fragment
from services.docs.openapi import docs_fragment
from shared.openapi import (
    PROBLEM_EXAMPLES,
    MergeConflict,
    fragment,
    json_body,
    merge,
    operation,
    paged_list,
    problem,
    problem_response,
    problem_responses,
    problems,
)
from shared.problems import Problem


def _op(op_id: str) -> dict[str, Any]:
    return operation(op_id, "Do it", ["things"], {"200": {"description": "ok"}, **problems(404)})


def test_paths_components_and_tags_are_united_and_inputs_left_alone() -> None:
    first = fragment("first", {"/v2/a": {"get": _op("getA")}}, {"A": {"type": "object"}})
    first["security"] = [{"bearerAuth": []}]
    first["tags"] = [{"name": "things"}]
    second = fragment("second", {"/v2/b": {"post": _op("postB")}}, {"B": {"type": "string"}})
    second["tags"] = [{"name": "things", "description": "ignored: first wins"}, {"name": "more"}]
    second["components"]["responses"] = {"Gone": {"description": "gone"}}
    before = copy.deepcopy([first, second])
    merged = merge([first, second])
    assert [first, second] == before
    assert merged["info"] == {"title": "first", "version": "2"}
    assert merged["security"] == [{"bearerAuth": []}]
    assert set(merged["paths"]) == {"/v2/a", "/v2/b"}
    assert set(merged["components"]["schemas"]) == {"A", "B"}
    assert merged["components"]["responses"] == {"Gone": {"description": "gone"}}
    assert merged["tags"] == [{"name": "things"}, {"name": "more"}]
    merged["paths"]["/v2/a"]["get"]["summary"] = "changed"
    assert first["paths"]["/v2/a"]["get"]["summary"] == "Do it"


def test_the_same_name_twice_is_fine_when_identical() -> None:
    a = fragment("a", {"/v2/a": {"get": _op("getA")}}, {"Shared": {"type": "object"}})
    b = fragment("b", {"/v2/a": {"get": _op("getA")}}, {"Shared": {"type": "object"}})
    assert merge([a, b]) == merge([a])


@pytest.mark.parametrize(
    ("second", "message"),
    [
        (fragment("b", {"/v2/a": {"get": _op("otherId")}}), "path '/v2/a'"),
        (fragment("b", {}, {"A": {"type": "string"}}), "components.schemas 'A'"),
    ],
)
def test_a_conflict_is_refused(second: dict[str, Any], message: str) -> None:
    first = fragment("a", {"/v2/a": {"get": _op("getA")}}, {"A": {"type": "object"}})
    with pytest.raises(MergeConflict, match=message):
        merge([first, second])


def test_conflicting_webhooks_are_refused() -> None:
    a = {**fragment("a", {}), "webhooks": {"x.y": {"post": _op("a")}}}
    b = {**fragment("b", {}), "webhooks": {"x.y": {"post": _op("b")}}}
    with pytest.raises(MergeConflict, match=r"webhook 'x\.y'"):
        merge([a, b])


def test_helpers_build_what_the_contract_says() -> None:
    body = json_body({"type": "object"}, content_types=("application/merge-patch+json", "application/json"))
    assert body == {
        "required": True,
        "content": {
            "application/merge-patch+json": {"schema": {"type": "object"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
    page = paged_list({"$ref": "#/components/schemas/A"}, "A page.", total_count=True)
    assert page["content"]["application/json"]["schema"]["type"] == "array"
    assert set(page["headers"]) == {"Link", "X-Total-Count"}
    public = operation("p", "P", ["t"], {"200": {"description": "ok"}}, public=True)
    assert public["security"] == [] and public["parameters"] == []
    assert problems(404, 401) == {
        "401": {"$ref": "#/components/responses/Problem401"},
        "404": {"$ref": "#/components/responses/Problem404"},
    }


def test_an_error_response_has_an_example_of_its_own_status() -> None:
    responses = problem_responses()
    assert set(responses) == {f"Problem{status}" for status in PROBLEM_EXAMPLES}
    for status in PROBLEM_EXAMPLES:
        example = responses[f"Problem{status}"]["content"]["application/problem+json"]["example"]
        assert example["status"] == status and example["title"] == Problem(status, "").title
    assert "Retry-After" in responses["Problem429"]["headers"]
    assert "Retry-After" not in responses["Problem404"]["headers"]
    assert "WWW-Authenticate" in responses["Problem401"]["headers"]
    # An operation's own example replaces the shared one, inline; the others stay references.
    own = problems(401, 404, examples=[Problem(401, "the email or password is wrong")])
    assert own["404"] == {"$ref": "#/components/responses/Problem404"}
    assert own["401"]["content"]["application/problem+json"]["example"]["detail"] == (
        "the email or password is wrong"
    )
    with pytest.raises(ValueError, match="a 404 example documents a 401"):
        problem_response(401, Problem(404, "no such user"))
    with pytest.raises(ValueError, match="no example for a 418"):
        problem(418)


def test_auth_and_docs_fragments_merge_without_conflict() -> None:
    merged = merge([docs_fragment(), build_fragment()])
    assert "/v2/user/{id}" in merged["paths"] and "Problem404" in merged["components"]["responses"]
    # The user models are the validation schemas themselves: they cannot drift.
    from services.auth import schemas

    assert merged["components"]["schemas"]["User"] == schemas.USER
    assert merged["components"]["schemas"]["UserCreate"] == schemas.USER_CREATE

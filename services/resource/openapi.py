"""The OpenAPI fragment of the resource routes, made from the type declarations (so a new type
is documented as soon as it is declared). The docs service merges it into /v2/openapi.json;
its own fragment defines the error responses (`Problem{status}`) and the bearer scheme this
refers to."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.resource.query import OPERATORS
from services.resource.types import ResourceType, Transition, Workflow
from services.resource.workflow import wrong_source
from shared import openapi as oas
from shared.problems import Problem, with_article
from shared.web.writes import MERGE_PATCH

ETAG = oas.header("The version of the resource")


def _errors(*statuses: int, examples: Sequence[Problem] = ()) -> dict[str, Any]:
    return oas.problems(400, 401, *statuses, examples=examples)


TRANSITION_EXAMPLE = {"comment": "Checked the date and the room with the team."}


def _step_errors(rtype: ResourceType, flow: Workflow, step: Transition) -> dict[str, Any]:
    """A step's errors, its 409 the one it really answers from a state it does not start from."""
    states = [flow.initial, *(t.target for t in flow.transitions)]
    elsewhere = next(state for state in states if state not in step.sources)
    return _errors(403, 404, 409, 412, 415, 422, examples=[wrong_source(rtype, step, elsewhere)])


def _example(rtype: ResourceType, whole: bool = True) -> Any:
    """The media type's `example`: the declared one, or its first field alone for a PATCH."""
    if not rtype.example:
        return None
    return rtype.example if whole else dict(list(rtype.example.items())[:1])


def _body_description(rtype: ResourceType) -> str | None:
    """How to fill the fields that name other resources (the example leaves them out)."""
    notes = [
        f"`{name}` names an existing {target}: create {with_article(target)} first "
        f"(POST /v2/{target}/list) and use its `id`."
        for name, target in rtype.references.items()
    ]
    return " ".join(notes) if notes else None


def _id_param(rtype: ResourceType) -> dict[str, Any]:
    return oas.path_param("id", f"The {rtype.name}'s id")


def _list_params(rtype: ResourceType) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    for name in rtype.filters:
        spec = {k: v for k, v in rtype.properties[name].items() if k not in ("readOnly", "description")}
        if rtype.kind(name) == "array":
            spec = {"type": "string"}
            ops = ["in"]
        elif rtype.kind(name) in ("time", "integer"):
            ops = list(OPERATORS)
        else:
            ops = ["in"]
        params.append(oas.query_param(name, f"{name} equals", spec))
        for op in ops:
            params.append(
                oas.query_param(
                    f"{name}[{op}]", f"{name} {op} (comma-separated values)" if op == "in" else f"{name} {op}"
                )
            )
    sorts = ", ".join(rtype.sorts)
    if rtype.search:
        params.append(oas.query_param("q", "Text search"))
    params += [
        oas.query_param(
            "sort",
            f"Comma-separated fields, `-` for descending: {sorts}",
            {"type": "string", "default": rtype.default_sort},
        ),
        oas.query_param("fields", "Fields to return"),
        oas.LIMIT_PARAM,
        oas.CURSOR_PARAM,
        oas.query_param("count", "`exact` adds X-Total-Count", {"type": "string", "enum": ["exact"]}),
    ]
    return params


def _paths(rtype: ResourceType) -> dict[str, Any]:
    title, tag = rtype.title, rtype.name
    one = oas.json_response(f"The {rtype.name}", oas.schema_ref(title), headers={"ETag": ETAG})
    body = oas.json_body(
        oas.schema_ref(f"{title}Input"), description=_body_description(rtype), example=_example(rtype)
    )
    patch_body = oas.json_body(
        oas.schema_ref(f"{title}Patch"), content_types=MERGE_PATCH, example=_example(rtype, whole=False)
    )
    many = {"type": "array", "items": oas.schema_ref(f"{title}Input"), "minItems": 1, "maxItems": 100}

    def op(verb: str, summary: str, responses: dict[str, Any], **more: Any) -> dict[str, Any]:
        """An operation on the type: `verb_type` is its id, the type its tag."""
        return oas.operation(f"{verb}_{rtype.name}", summary, [tag], responses, **more)

    def item(**operations: dict[str, Any]) -> dict[str, Any]:
        """A path of one item: the id parameter, then its operations."""
        return {"parameters": [_id_param(rtype)], **operations}

    def change(verb: str, summary: str, request_body: dict[str, Any]) -> dict[str, Any]:
        """PUT and PATCH: the same answers, the same If-Match; another body."""
        return op(
            verb,
            summary,
            {"200": one, **_errors(403, 404, 409, 412, 413, 415, 422)},
            parameters=[oas.IF_MATCH_PARAM],
            request_body=request_body,
        )

    paths: dict[str, Any] = {
        f"/v2/{rtype.name}/list": {
            "get": op(
                "list",
                f"List {rtype.name}s",
                {
                    "200": oas.paged_list(
                        oas.schema_ref(title), "One page; the next is in the Link header", total_count=True
                    ),
                    **_errors(),
                },
                parameters=_list_params(rtype),
            ),
            "post": op(
                "create",
                f"Create {with_article(rtype.name)}, or up to 100 (all or none)",
                {
                    "201": oas.json_response(
                        "Created",
                        {"oneOf": [oas.schema_ref(title), {"type": "array", "items": oas.schema_ref(title)}]},
                        headers={"ETag": ETAG, "Location": oas.header("Its URL")},
                    ),
                    **_errors(403, 409, 413, 415, 422),
                },
                parameters=[
                    oas.header_param("Idempotency-Key", "A retry with the same key returns the first result")
                ],
                request_body=oas.json_body(
                    {"oneOf": [oas.schema_ref(f"{title}Input"), many]},
                    description=_body_description(rtype),
                    example=_example(rtype),
                ),
            ),
        },
        f"/v2/{rtype.name}/{{id}}": item(
            get=op(
                "get",
                f"Get {with_article(rtype.name)}",
                {"200": one, "304": oas.empty_response("Not modified"), **_errors(404)},
                parameters=[oas.IF_NONE_MATCH_PARAM],
            ),
            put=change("replace", f"Replace {with_article(rtype.name)}'s writable fields", body),
            patch=change(
                "patch",
                f"Change {with_article(rtype.name)} with a JSON Merge Patch (null clears a field)",
                patch_body,
            ),
            delete=op(
                "delete",
                f"Delete {with_article(rtype.name)}",
                {"204": oas.empty_response("Deleted"), **_errors(403, 404, 409, 412)},
                parameters=[oas.IF_MATCH_PARAM],
            ),
        ),
    }
    if rtype.workflow is not None:
        for step in rtype.workflow.transitions:
            paths[f"/v2/{rtype.name}/{{id}}/{step.name}"] = item(
                post=op(
                    step.name,
                    f"{step.name.capitalize()}: {' or '.join(step.sources)} → {step.target}",
                    {"200": one, **_step_errors(rtype, rtype.workflow, step)},
                    parameters=[oas.IF_MATCH_PARAM],
                    request_body=oas.json_body(
                        oas.schema_ref("TransitionInput"), required=False, example=TRANSITION_EXAMPLE
                    ),
                ),
            )
        paths[f"/v2/{rtype.name}/{{id}}/history"] = item(
            get=op(
                "history",
                f"The workflow transitions and edits of {with_article(rtype.name)}",
                {
                    "200": oas.json_response(
                        "Oldest first", {"type": "array", "items": oas.schema_ref("HistoryEntry")}
                    ),
                    **_errors(404),
                },
                description="Oldest first. An edit is an entry with the comment `edited`, from "
                "the state it was made in to the state it left (the four-eyes rule reads them: "
                "nobody approves or rejects content they edited since it was last approved).",
            ),
        )
    return paths


def _patch_schema(rtype: ResourceType) -> dict[str, Any]:
    props = {}
    for name, spec in rtype.writable.items():
        kinds = spec.get("type")
        kinds = [kinds] if isinstance(kinds, str) else list(kinds or [])
        props[name] = {**spec, "type": sorted({*kinds, "null"})} if kinds else spec
    return {
        "title": f"{rtype.title}Patch",
        "type": "object",
        "properties": props,
        "additionalProperties": False,
    }


SHARED_SCHEMAS: dict[str, Any] = {
    "TransitionInput": {
        "type": "object",
        "properties": {"comment": {"type": "string", "maxLength": 2000}},
        "additionalProperties": False,
    },
    "HistoryEntry": {
        "type": "object",
        "properties": {
            "actorId": {"type": ["string", "null"], "format": "uuid"},
            "from": {"type": ["string", "null"]},
            "to": {"type": "string"},
            "comment": {"type": ["string", "null"]},
            "requestId": {"type": ["string", "null"]},
            "at": {"type": "string", "format": "date-time"},
        },
        "required": ["to", "at"],
    },
}


def fragment(types: Sequence[ResourceType]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for rtype in types:
        paths.update(_paths(rtype))
        schemas[rtype.title] = rtype.schema
        schemas[f"{rtype.title}Input"] = rtype.input_schema
        schemas[f"{rtype.title}Patch"] = _patch_schema(rtype)
    if any(rtype.workflow for rtype in types):
        schemas.update(SHARED_SCHEMAS)
    return oas.fragment("Herald resources", paths, schemas)

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
from shared.openapi import problems
from shared.problems import Problem, with_article

ETAG = {"description": "The version of the resource", "schema": {"type": "string"}}
JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _errors(*statuses: int, examples: Sequence[Problem] = ()) -> dict[str, Any]:
    return problems(400, 401, *statuses, examples=examples)


TRANSITION_EXAMPLE = {"comment": "Checked the date and the room with the team."}


def _step_errors(rtype: ResourceType, flow: Workflow, step: Transition) -> dict[str, Any]:
    """A step's errors, its 409 the one it really answers from a state it does not start from."""
    states = [flow.initial, *(t.target for t in flow.transitions)]
    elsewhere = next(state for state in states if state not in step.sources)
    return _errors(403, 404, 409, 412, 415, 422, examples=[wrong_source(rtype, step, elsewhere)])


def _examples(rtype: ResourceType, whole: bool = True) -> dict[str, Any]:
    """The media type's `example`: the declared one, or its first field alone for a PATCH."""
    if not rtype.example:
        return {}
    return {"example": rtype.example if whole else dict(list(rtype.example.items())[:1])}


def _body_description(rtype: ResourceType) -> dict[str, str]:
    """How to fill the fields that name other resources (the example leaves them out)."""
    notes = [
        f"`{name}` names an existing {target}: create {with_article(target)} first "
        f"(POST /v2/{target}/list) and use its `id`."
        for name, target in rtype.references.items()
    ]
    return {"description": " ".join(notes)} if notes else {}


def _id_param(rtype: ResourceType) -> dict[str, Any]:
    return {
        "name": "id",
        "in": "path",
        "required": True,
        "description": f"The {rtype.name}'s id",
        "schema": {"type": "string", "format": "uuid"},
    }


def _header(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "description": description,
        "schema": {"type": "string"},
    }


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
        params.append(
            {"name": name, "in": "query", "required": False, "description": f"{name} equals", "schema": spec}
        )
        for op in ops:
            params.append(
                {
                    "name": f"{name}[{op}]",
                    "in": "query",
                    "required": False,
                    "description": f"{name} {op} (comma-separated values)" if op == "in" else f"{name} {op}",
                    "schema": {"type": "string"},
                }
            )
    sorts = ", ".join(rtype.sorts)
    params += [
        {
            "name": "q",
            "in": "query",
            "required": False,
            "description": "Text search",
            "schema": {"type": "string"},
        },
        {
            "name": "sort",
            "in": "query",
            "required": False,
            "description": f"Comma-separated fields, `-` for descending: {sorts}",
            "schema": {"type": "string", "default": rtype.default_sort},
        },
        {
            "name": "fields",
            "in": "query",
            "required": False,
            "description": "Fields to return",
            "schema": {"type": "string"},
        },
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
        },
        {
            "name": "cursor",
            "in": "query",
            "required": False,
            "description": "From the `Link` header",
            "schema": {"type": "string"},
        },
        {
            "name": "count",
            "in": "query",
            "required": False,
            "description": "`exact` adds X-Total-Count",
            "schema": {"type": "string", "enum": ["exact"]},
        },
    ]
    if not rtype.search:
        params = [p for p in params if p["name"] != "q"]
    return params


def _paths(rtype: ResourceType) -> dict[str, Any]:
    title, tag = rtype.title, rtype.name
    one = {
        "description": f"The {rtype.name}",
        "headers": {"ETag": ETAG},
        "content": {JSON: {"schema": _ref(title)}},
    }
    body = {
        "required": True,
        **_body_description(rtype),
        "content": {JSON: {"schema": _ref(f"{title}Input"), **_examples(rtype)}},
    }
    if_match = _header("If-Match", "Apply only to this version (ETag); a stale one is a 412")
    paths: dict[str, Any] = {
        f"/v2/{rtype.name}/list": {
            "get": {
                "operationId": f"list_{rtype.name}",
                "summary": f"List {rtype.name}s",
                "tags": [tag],
                "parameters": _list_params(rtype),
                "responses": {
                    "200": {
                        "description": "One page; the next is in the Link header",
                        "headers": {
                            "Link": {"description": 'rel="next"', "schema": {"type": "string"}},
                            "X-Total-Count": {
                                "description": "With count=exact",
                                "schema": {"type": "integer"},
                            },
                        },
                        "content": {JSON: {"schema": {"type": "array", "items": _ref(title)}}},
                    },
                    **_errors(),
                },
            },
            "post": {
                "operationId": f"create_{rtype.name}",
                "summary": f"Create {with_article(rtype.name)}, or up to 100 (all or none)",
                "tags": [tag],
                "parameters": [
                    _header("Idempotency-Key", "A retry with the same key returns the first result")
                ],
                "requestBody": {
                    "required": True,
                    **_body_description(rtype),
                    "content": {
                        JSON: {
                            **_examples(rtype),
                            "schema": {
                                "oneOf": [
                                    _ref(f"{title}Input"),
                                    {
                                        "type": "array",
                                        "items": _ref(f"{title}Input"),
                                        "minItems": 1,
                                        "maxItems": 100,
                                    },
                                ]
                            },
                        }
                    },
                },
                "responses": {
                    "201": {
                        "description": "Created",
                        "headers": {
                            "ETag": ETAG,
                            "Location": {"description": "Its URL", "schema": {"type": "string"}},
                        },
                        "content": {
                            JSON: {
                                "schema": {"oneOf": [_ref(title), {"type": "array", "items": _ref(title)}]}
                            }
                        },
                    },
                    **_errors(403, 409, 413, 415, 422),
                },
            },
        },
        f"/v2/{rtype.name}/{{id}}": {
            "parameters": [_id_param(rtype)],
            "get": {
                "operationId": f"get_{rtype.name}",
                "summary": f"Get {with_article(rtype.name)}",
                "tags": [tag],
                "parameters": [_header("If-None-Match", "A 304 when the ETag still matches")],
                "responses": {"200": one, "304": {"description": "Not modified"}, **_errors(404)},
            },
            "put": {
                "operationId": f"replace_{rtype.name}",
                "summary": f"Replace {with_article(rtype.name)}'s writable fields",
                "tags": [tag],
                "parameters": [if_match],
                "requestBody": body,
                "responses": {"200": one, **_errors(403, 404, 409, 412, 413, 415, 422)},
            },
            "patch": {
                "operationId": f"patch_{rtype.name}",
                "summary": f"Change {with_article(rtype.name)} with a JSON Merge Patch (null clears a field)",
                "tags": [tag],
                "parameters": [if_match],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/merge-patch+json": {
                            "schema": _ref(f"{title}Patch"),
                            **_examples(rtype, whole=False),
                        },
                        JSON: {"schema": _ref(f"{title}Patch"), **_examples(rtype, whole=False)},
                    },
                },
                "responses": {"200": one, **_errors(403, 404, 409, 412, 413, 415, 422)},
            },
            "delete": {
                "operationId": f"delete_{rtype.name}",
                "summary": f"Delete {with_article(rtype.name)}",
                "tags": [tag],
                "parameters": [if_match],
                "responses": {"204": {"description": "Deleted"}, **_errors(403, 404, 409, 412)},
            },
        },
    }
    if rtype.workflow is not None:
        for step in rtype.workflow.transitions:
            paths[f"/v2/{rtype.name}/{{id}}/{step.name}"] = {
                "parameters": [_id_param(rtype)],
                "post": {
                    "operationId": f"{step.name}_{rtype.name}",
                    "summary": f"{step.name.capitalize()}: {' or '.join(step.sources)} → {step.target}",
                    "tags": [tag],
                    "parameters": [if_match],
                    "requestBody": {
                        "required": False,
                        "content": {JSON: {"schema": _ref("TransitionInput"), "example": TRANSITION_EXAMPLE}},
                    },
                    "responses": {"200": one, **_step_errors(rtype, rtype.workflow, step)},
                },
            }
        paths[f"/v2/{rtype.name}/{{id}}/history"] = {
            "parameters": [_id_param(rtype)],
            "get": {
                "operationId": f"history_{rtype.name}",
                "summary": f"The workflow transitions and edits of {with_article(rtype.name)}",
                "description": "Oldest first. An edit is an entry with the comment `edited`, from "
                "the state it was made in to the state it left (the four-eyes rule reads them: "
                "nobody approves or rejects content they edited since it was last approved).",
                "tags": [tag],
                "responses": {
                    "200": {
                        "description": "Oldest first",
                        "content": {JSON: {"schema": {"type": "array", "items": _ref("HistoryEntry")}}},
                    },
                    **_errors(404),
                },
            },
        }
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
    return {
        "openapi": "3.1.0",
        "info": {"title": "Herald resources", "version": "2"},
        "paths": paths,
        "components": {"schemas": schemas},
    }

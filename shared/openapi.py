"""OpenAPI 3.1 fragments: each service documents its own public routes with these helpers and
serves the result at `/openapi.json`; the docs service merges the fragments with its own (which
defines the shared `Problem` response, the bearer scheme and the webhooks) into
`/v2/openapi.json`.

A fragment is `{"openapi", "info", "paths", "components": {"schemas": ...}}`; every error
response is `problem(status)`, a reference to `#/components/responses/Problem{status}`, which the
docs service's fragment defines (`problem_responses()`: each with an example of that status). A
service adopts it with

    paths = {"/v2/thing/{id}": {"get": operation("getThing", "Get a thing", ["things"],
             {"200": json_response("The thing.", schema_ref("Thing")), **problems(401, 404)},
             parameters=[path_param("id", "The thing's id.")])}}
    add_fragment_route(app, fragment("Herald things", paths, {"Thing": THING_SCHEMA}))

and the route-coverage test (tests/integration/test_openapi.py) checks it documents every route.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from aiohttp import web

from shared.authn import public
from shared.problems import (
    PROBLEM_CONTENT_TYPE,
    Conflict,
    Forbidden,
    NotFound,
    Problem,
    ValidationFailed,
    problem_body,
)
from shared.web.json_io import JSON_CONTENT_TYPE

OPENAPI_VERSION = "3.1.0"
FRAGMENT_PATH = "/openapi.json"

UUID_SCHEMA: dict[str, Any] = {"type": "string", "format": "uuid"}


def schema_ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


# -- error responses -------------------------------------------------------------------------

EXAMPLE_REQUEST_ID = "0d3c5a4e-8f21-4b6a-9c7e-1f2a3b4c5d6e"
MAX_BODY_EXAMPLE = 1024 * 1024  # HERALD_MAX_BODY_BYTES's default
# Every error status an operation documents: what it means, and an example answer made with the
# same `Problem` the services raise (so its title and type are the real ones).
PROBLEM_EXAMPLES: dict[int, tuple[str, Problem]] = {
    400: (
        "Bad request: a query parameter, cursor or body that cannot be read.",
        Problem(400, "limit must be a whole number from 1 to 500"),
    ),
    401: (
        "The token is missing, malformed, expired or revoked (`detail` says which): get one "
        "from POST /v2/requesttoken.",
        Problem(401, "this request needs a bearer token"),
    ),
    403: (
        "Forbidden: the token is good, but its user may not do this.",
        Forbidden("this needs the admin role"),
    ),
    404: ("Not found: no such resource, or none the caller may see.", NotFound("no such resource")),
    409: (
        "Conflict with the current state of the resource (`detail` says which).",
        Conflict("the request conflicts with the current state of the resource"),
    ),
    412: (
        "Precondition failed: the ETag in If-Match is no longer the resource's version.",
        Problem(412, "the resource changed meanwhile; fetch it again"),
    ),
    413: (
        "The body is larger than the limit (HERALD_MAX_BODY_BYTES).",
        Problem(413, f"the body is larger than {MAX_BODY_EXAMPLE} bytes"),
    ),
    415: (
        "Unsupported media type: send the body as one of the operation's JSON media types.",
        Problem(415, "send the body as application/json, not text/plain"),
    ),
    422: (
        "The body is JSON but breaks the schema or a rule: `errors` lists each field and why.",
        ValidationFailed([{"field": "name", "message": "is required"}]),
    ),
    429: (
        "Too many requests: wait the seconds in Retry-After.",
        Problem(429, "too many requests; slow down", headers={"Retry-After": "1"}),
    ),
    502: (
        "The service behind the edge failed to answer.",
        Problem(502, "the resource service failed to answer"),
    ),
    503: (
        "Unavailable for now (a service restarting, the database or token checks unreachable): "
        "retry after the seconds in Retry-After.",
        Problem(503, "the resource service is unavailable; try again shortly", headers={"Retry-After": "5"}),
    ),
    504: (
        "The service behind the edge did not answer in time.",
        Problem(504, "the resource service did not answer in time"),
    ),
}


def problem_response(status: int, example: Problem | None = None) -> dict[str, Any]:
    """The response object of an error status: problem+json with an example of that status
    (`example` replaces the shared one where an operation has a more fitting one)."""
    description, shared_example = PROBLEM_EXAMPLES[status]
    example = example or shared_example
    if example.status != status:
        raise ValueError(f"a {example.status} example documents a {status} response")
    headers: dict[str, Any] = {"X-Request-ID": header("The request id, also in `instance`.")}
    if status == 401:
        headers["WWW-Authenticate"] = header(
            '`Bearer realm="herald"`, with `error="invalid_token"` for a bad one.'
        )
    if "Retry-After" in example.headers:
        headers["Retry-After"] = {
            **header("Seconds to wait before trying again.", {"type": "integer"}),
            "example": int(example.headers["Retry-After"]),
        }
    return {
        "description": description,
        "headers": headers,
        "content": {
            PROBLEM_CONTENT_TYPE: {
                "schema": schema_ref("Problem"),
                "example": problem_body(example, EXAMPLE_REQUEST_ID),
            }
        },
    }


def problem_responses() -> dict[str, Any]:
    """`components.responses` of every documented error status (the docs service's fragment)."""
    return {f"Problem{status}": problem_response(status) for status in PROBLEM_EXAMPLES}


def problem(status: int) -> dict[str, str]:
    """The shared error response of `status`, by reference."""
    if status not in PROBLEM_EXAMPLES:
        raise ValueError(f"no example for a {status} problem: add one to PROBLEM_EXAMPLES")
    return {"$ref": f"#/components/responses/Problem{status}"}


def problems(*statuses: int, examples: Iterable[Problem] = ()) -> dict[str, Any]:
    """Error responses by status code: the shared one of each status, or inline with one of
    `examples` where the operation has a more fitting example of that status."""
    own = {example.status: example for example in examples}
    return {
        str(status): problem_response(status, own[status]) if status in own else problem(status)
        for status in sorted({*statuses, *own})
    }


def json_body(
    schema: Mapping[str, Any],
    *,
    description: str | None = None,
    content_types: Iterable[str] = (JSON_CONTENT_TYPE,),
    required: bool = True,
    example: Any = None,
) -> dict[str, Any]:
    """A request body of JSON (or another JSON media type such as merge-patch). `example` is
    what Swagger UI's "Try it out" sends: it must succeed as it stands (a test executes it)."""
    media: dict[str, Any] = {"schema": dict(schema)}
    if example is not None:
        media["example"] = example
    body: dict[str, Any] = {
        "required": required,
        "content": {ct: copy.deepcopy(media) for ct in content_types},
    }
    if description:
        body["description"] = description
    return body


def header(description: str, schema: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "schema": dict(schema or {"type": "string"})}


def json_response(
    description: str,
    schema: Mapping[str, Any],
    *,
    headers: Mapping[str, Any] | None = None,
    example: Any = None,
) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": dict(schema)}
    if example is not None:
        media["example"] = example
    response: dict[str, Any] = {"description": description, "content": {JSON_CONTENT_TYPE: media}}
    if headers:
        response["headers"] = dict(headers)
    return response


def empty_response(description: str, headers: Mapping[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description}
    if headers:
        response["headers"] = dict(headers)
    return response


LINK_HEADER = header('The next page, when there is one: `<url>; rel="next"` (RFC 8288).')
TOTAL_COUNT_HEADER = header("How many items match, with `?count=exact`.", {"type": "integer"})


def paged_list(item: Mapping[str, Any], description: str, *, total_count: bool = False) -> dict[str, Any]:
    """A 200 with a JSON array, paged with a `Link: <...>; rel="next"` header."""
    headers = {"Link": LINK_HEADER}
    if total_count:
        headers["X-Total-Count"] = TOTAL_COUNT_HEADER
    return json_response(description, {"type": "array", "items": dict(item)}, headers=headers)


def path_param(name: str, description: str, schema: Mapping[str, Any] = UUID_SCHEMA) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": dict(schema)}


def _param(
    where: str, name: str, description: str, schema: Mapping[str, Any] | None, required: bool
) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": required,
        "description": description,
        "schema": dict(schema or {"type": "string"}),
    }


def query_param(
    name: str, description: str, schema: Mapping[str, Any] | None = None, *, required: bool = False
) -> dict[str, Any]:
    return _param("query", name, description, schema, required)


def header_param(
    name: str, description: str, schema: Mapping[str, Any] | None = None, *, required: bool = False
) -> dict[str, Any]:
    return _param("header", name, description, schema, required)


LIMIT_PARAM = query_param(
    "limit", "Items per page.", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}
)
CURSOR_PARAM = query_param("cursor", "The opaque cursor from the `Link` header of the previous page.")
IF_MATCH_PARAM = header_param(
    "If-Match", "An ETag from an earlier response: the change is made only if it is still current (else 412)."
)
IF_NONE_MATCH_PARAM = header_param(
    "If-None-Match", "An ETag: 304 without a body when it has not changed since."
)


def operation(
    operation_id: str,
    summary: str,
    tags: Iterable[str],
    responses: Mapping[str, Any],
    *,
    parameters: Iterable[Mapping[str, Any]] = (),
    request_body: Mapping[str, Any] | None = None,
    description: str | None = None,
    public: bool = False,
) -> dict[str, Any]:
    """One operation; `public=True` means it needs no token (`security: []`)."""
    op: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "tags": list(tags),
        "parameters": [dict(p) for p in parameters],
    }
    if description:
        op["description"] = description
    if request_body is not None:
        op["requestBody"] = dict(request_body)
    op["responses"] = dict(responses)
    if public:
        op["security"] = []
    return op


def fragment(
    title: str,
    paths: Mapping[str, Any],
    schemas: Mapping[str, Any] | None = None,
    *,
    version: str = "2",
    description: str | None = None,
) -> dict[str, Any]:
    info: dict[str, Any] = {"title": title, "version": version}
    if description:
        info["description"] = description
    return {
        "openapi": OPENAPI_VERSION,
        "info": info,
        "paths": dict(paths),
        "components": {"schemas": dict(schemas or {})},
    }


# -- merging ---------------------------------------------------------------------------------


class MergeConflict(ValueError):
    """Two fragments define the same path or component name differently."""


def _merge_named(target: dict[str, Any], source: Mapping[str, Any], where: str) -> None:
    for name, value in source.items():
        if name in target and target[name] != value:
            raise MergeConflict(f"{where} {name!r} is defined twice, differently")
        target[name] = copy.deepcopy(value)


def merge(fragments: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """One document from fragments. The first gives `info`, `security` and `servers`; paths,
    webhooks and every kind of component are united, and the same name defined twice
    differently is a `MergeConflict` (the same name with the same content is fine). Tags are
    united by name, in order. The fragments are not changed."""
    merged: dict[str, Any] = {"openapi": OPENAPI_VERSION, "paths": {}, "components": {}}
    tags: dict[str, dict[str, Any]] = {}
    for index, frag in enumerate(fragments):
        if index == 0:
            for key in ("info", "security", "servers", "jsonSchemaDialect"):
                if key in frag:
                    merged[key] = copy.deepcopy(frag[key])
        _merge_named(merged["paths"], frag.get("paths") or {}, "path")
        if frag.get("webhooks"):
            _merge_named(merged.setdefault("webhooks", {}), frag["webhooks"], "webhook")
        for kind, named in (frag.get("components") or {}).items():
            _merge_named(merged["components"].setdefault(kind, {}), named or {}, f"components.{kind}")
        for tag in frag.get("tags") or ():
            tags.setdefault(tag["name"], copy.deepcopy(tag))
    if tags:
        merged["tags"] = list(tags.values())
    return merged


# -- serving a fragment ----------------------------------------------------------------------


def document_response(request: web.Request, body: bytes, etag: str) -> web.Response:
    """The document, or a 304 when the caller already has this version."""
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if _has_version(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, headers=headers, content_type=JSON_CONTENT_TYPE, charset="utf-8")


def _has_version(if_none_match: str | None, etag: str) -> bool:
    """`If-None-Match` (a list of tags, or `*`) names this one; compared weakly (RFC 9110)."""
    if not if_none_match:
        return False
    tags = (tag.strip() for tag in if_none_match.split(","))
    return any(tag == "*" or tag.removeprefix("W/") == etag for tag in tags)


def etag_of(body: bytes) -> str:
    """A strong ETag: the hash of the bytes served."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def add_fragment_route(app: web.Application, document: Mapping[str, Any]) -> None:
    """Serve `document` at GET /openapi.json, public, with an ETag computed once (revalidated
    with If-None-Match: a 304 while it is the same; the docs service revalidates so). Every
    service serves its fragment so."""
    body = orjson.dumps(document)
    etag = etag_of(body)

    @public
    async def openapi_fragment(request: web.Request) -> web.Response:
        return document_response(request, body, etag)

    app.router.add_get(FRAGMENT_PATH, openapi_fragment)

"""`GET /v2/{type}/list` query parameters turned into one SQL query: filters on declared fields,
text search, sort with keyset cursors, projection and counting. Every name that reaches the SQL
text is a declared field name (checked here); every value goes in as a parameter."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from multidict import MultiMapping

from services.resource.documents import parse_uuid
from services.resource.types import COLUMNS, ResourceType
from shared.events import format_time
from shared.problems import Problem, with_article
from shared.validation import BIGINT, INTEGER, TIME_MESSAGE, parse_integer, parse_time
from shared.verifier import Principal
from shared.visibility import REVIEWER_ROLES
from shared.web.paging import decode_cursor, encode_cursor

RESERVED = ("q", "sort", "fields", "limit", "cursor", "count")
OPERATORS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "in": "in"}
_PARAM = re.compile(r"^([A-Za-z][A-Za-z0-9]*)(?:\[([A-Za-z]*)\])?$")
_COLUMN_CASTS = {"id": "uuid", "owner_id": "uuid", "status": "text", "version": "int"}
_TIME_COLUMNS = ("created_at", "updated_at")


@dataclass
class Sql:
    """A WHERE clause under construction, with its numbered parameters."""

    where: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def param(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"


def expression(rtype: ResourceType, name: str) -> str:
    column = COLUMNS.get(name)
    # `name` is a declared field (checked by the callers), never a caller's string.
    return column if column else f"(doc -> '{name}')"


def _cast(rtype: ResourceType, name: str) -> str:
    column = COLUMNS.get(name)
    if column is None:
        return "jsonb"
    return "timestamptz" if column in _TIME_COLUMNS else _COLUMN_CASTS[column]


def _value(rtype: ResourceType, name: str, raw: str) -> Any:
    """One query value as the SQL parameter of its field, or a 400 naming the field."""
    kind = rtype.kind(name)
    column = COLUMNS.get(name)
    value: Any
    if kind == "time":
        moment = parse_time(raw)
        if moment is None:
            raise Problem(400, f"{name}: {raw!r} is not valid: it {TIME_MESSAGE}")
        value = moment if column else format_time(moment)
    elif kind == "uuid":
        normalized = parse_uuid(raw)
        if normalized is None:
            raise Problem(400, f"{name}: {raw!r} is not a UUID")
        value = uuid.UUID(normalized) if column else normalized
    elif kind == "integer":
        # The column's range, or bigint's for a number in the document (orjson writes no more).
        bounds = INTEGER if _COLUMN_CASTS.get(column or "") == "int" else BIGINT
        parsed = parse_integer(raw, bounds)
        if parsed is None:
            raise Problem(400, f"{name}: {raw[:40]!r} is not a whole number from {bounds[0]} to {bounds[1]}")
        value = parsed
    elif kind == "enum":
        allowed = rtype.properties[name]["enum"]
        if raw not in allowed:
            raise Problem(400, f"{name}: {raw!r} is not one of {', '.join(allowed)}")
        value = raw
    else:
        value = raw
    return value if column else orjson.dumps(value).decode()


def add_filter(sql: Sql, rtype: ResourceType, name: str, op: str, raw: str) -> None:
    expr = expression(rtype, name)
    if rtype.kind(name) == "array":  # tags: contains one, or any of several
        if op == "eq":
            sql.where.append(f"{expr} ? {sql.param(raw)}")
        elif op == "in":
            sql.where.append(f"{expr} ?| {sql.param(_split(raw))}::text[]")
        else:
            raise Problem(400, f"{name}[{op}]: a list field takes = or [in]")
        return
    cast = _cast(rtype, name)
    if op == "in":
        values = [_value(rtype, name, part) for part in _split(raw)]
        sql.where.append(f"{expr} = ANY({sql.param(values)}::{cast}[])")
    else:
        comparison = "=" if op == "eq" else OPERATORS[op]
        sql.where.append(f"{expr} {comparison} {sql.param(_value(rtype, name, raw))}::{cast}")


def _split(raw: str) -> list[str]:
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    if not parts or len(parts) > 100:
        raise Problem(400, "[in] takes 1 to 100 comma-separated values")
    return parts


def visibility(sql: Sql, rtype: ResourceType, caller: Principal, statuses: set[str] | None = None) -> None:
    """What the caller may not see does not exist for them (404 and absent from lists).
    `statuses`: what the query's status filters allow (None: any). When they allow only hidden
    states, only the caller's own rows can match, and saying so lets PostgreSQL walk the owner's
    index (a member's `?status=draft` at 1,000,000 events: 1.9 s through every draft, else)."""
    workflow = rtype.workflow
    if workflow is None or REVIEWER_ROLES.intersection(caller.roles):
        return
    public = set(workflow.public_states)
    if statuses is not None and statuses <= public:
        return  # every row the filters allow is visible to all
    me = sql.param(uuid.UUID(caller.user_id))
    if statuses is not None and not statuses & public:
        sql.where.append(f"owner_id = {me}::uuid")
        return
    states = sql.param(list(workflow.public_states))
    sql.where.append(f"(status = ANY({states}::text[]) OR owner_id = {me}::uuid)")


def _allowed_statuses(query: MultiMapping[str]) -> set[str] | None:
    """The states the (already validated) status filters of a query allow; None: no filter."""
    allowed: set[str] | None = None
    for key, raw in query.items():
        if key in ("status", "status[in]"):
            values = set(_split(raw)) if key == "status[in]" else {raw}
            allowed = values if allowed is None else allowed & values
    return allowed


@dataclass
class ListQuery:
    rtype: ResourceType
    sql: Sql
    order: list[tuple[str, bool]]  # (field, descending), ending in id
    fields: list[str] | None
    limit: int
    count: bool
    cursor_condition: str | None = None
    filter_params: int = 0  # how many of sql.params the filters use (the cursor's come after)

    def select(self) -> tuple[str, list[Any]]:
        """Each item's JSON text (the stored representation, or its projection on ?fields=),
        then its sort keys (for the next page's cursor)."""
        where = list(self.sql.where)
        if self.cursor_condition:
            where.append(self.cursor_condition)
        exprs = self._order_exprs()
        order = ", ".join(f"{expr} {'DESC' if desc else 'ASC'}" for expr, desc in exprs)
        columns = ", ".join([self._item(), *(expr for expr, _ in exprs)])
        text = f"SELECT {columns} FROM resources WHERE {' AND '.join(where)} ORDER BY {order} LIMIT {self.limit + 1}"
        return text, self.sql.params

    def _item(self) -> str:
        if self.fields is None:
            return "shown::text"
        # Declared field names only (checked by _parse_fields): never a caller's string.
        pairs = ", ".join(f"'{name}', shown -> '{name}'" for name in self.fields)
        return f"json_build_object({pairs})::text"

    def count_query(self) -> tuple[str, list[Any]]:
        # Counts every match, so without the cursor's condition and its parameters.
        params = self.sql.params[: self.filter_params]
        return f"SELECT count(*) FROM resources WHERE {' AND '.join(self.sql.where)}", params

    def _order_exprs(self) -> list[tuple[str, bool]]:
        return [(self._expr(name), desc) for name, desc in self.order]

    def _expr(self, name: str) -> str:
        return "id" if name == "id" else expression(self.rtype, name)

    def cursor_after(self, record: Any) -> str:
        """The cursor of the page after `record` (a row of `select`): its sort keys, each as a
        JSON value of its own type (a number stays a number: "10" < "9" as text)."""
        values: list[Any] = []
        for (name, _), value in zip(self.order, list(record)[1:], strict=True):
            if name == "id" or COLUMNS.get(name) is None:
                value = str(value) if name == "id" else orjson.loads(value)  # jsonb comes as text
            elif isinstance(value, datetime):
                value = value.isoformat()  # microseconds kept: the column's own precision
            elif isinstance(value, uuid.UUID):
                value = str(value)
            values.append(value)
        return encode_cursor(values)


def parse_list_query(
    rtype: ResourceType, query: MultiMapping[str], caller: Principal, limit: int
) -> ListQuery:
    sql = Sql(where=[f"type = '{rtype.name}'"])  # a literal, so the partial indexes apply
    for key, raw in query.items():
        if "\x00" in key or "\x00" in raw:
            raise Problem(400, "query parameters must not contain the NUL character")
        if key in RESERVED:
            continue
        match = _PARAM.match(key)
        if not match:
            raise Problem(400, f"unknown query parameter: {key}")
        name, op = match.group(1), match.group(2)
        if name not in rtype.properties:
            raise Problem(
                400, f"unknown query parameter: {key} ({name} is not a field of {with_article(rtype.name)})"
            )
        if name not in rtype.filters:
            raise Problem(400, f"{name} cannot be filtered on")
        if op is not None and op not in OPERATORS:
            raise Problem(400, f"unknown operator [{op}] in {key}; use gt, gte, lt, lte or in")
        add_filter(sql, rtype, name, op or "eq", raw)
    if "q" in query:
        if not rtype.search:
            raise Problem(400, f"{rtype.name}s have no text search: q is not taken here")
        text = query["q"].strip()
        if not text:
            raise Problem(400, "q must not be empty")
        sql.where.append(f"search @@ websearch_to_tsquery('simple', {sql.param(text)})")
    visibility(sql, rtype, caller, _allowed_statuses(query) if "status" in rtype.filters else None)
    listing = ListQuery(
        rtype=rtype,
        sql=sql,
        order=_parse_sort(rtype, query.get("sort", rtype.default_sort)),
        fields=_parse_fields(rtype, query.get("fields")),
        limit=limit,
        count=_parse_count(query.get("count")),
    )
    listing.filter_params = len(sql.params)
    if "cursor" in query:
        listing.cursor_condition = _keyset(listing, decode_cursor(query["cursor"]))
    return listing


def _parse_sort(rtype: ResourceType, raw: str) -> list[tuple[str, bool]]:
    order: list[tuple[str, bool]] = []
    for part in raw.split(","):
        part = part.strip()
        name = part.lstrip("-")
        if name not in rtype.sorts and name != "id":
            raise Problem(400, f"sort: {name or part!r} is not a sort field ({', '.join(rtype.sorts)})")
        if any(name == seen for seen, _ in order):
            raise Problem(400, f"sort: {name} is named twice")
        order.append((name, part.startswith("-")))
    if order[-1][0] != "id":  # every order ends in id, in the direction of the last key
        order.append(("id", order[-1][1]))
    return order


def _parse_fields(rtype: ResourceType, raw: str | None) -> list[str] | None:
    if raw is None:
        return None
    names = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = [name for name in names if name not in rtype.properties]
    if not names:
        raise Problem(400, "fields: name at least one field")
    if unknown:
        raise Problem(
            400, f"fields: unknown {'field' if len(unknown) == 1 else 'fields'} {', '.join(unknown)}"
        )
    return list(dict.fromkeys(names))  # a name given twice is one key (a JSON object's keys are unique)


def _parse_count(raw: str | None) -> bool:
    if raw is None:
        return False
    if raw != "exact":
        raise Problem(400, "count takes the value exact")
    return True


def _cursor_value(rtype: ResourceType, name: str, raw: Any) -> Any:
    """A cursor's key as the SQL parameter of its field, if it has the field's type (a cursor
    comes back from the caller: anything else is None, a 400)."""
    if isinstance(raw, str) and "\x00" in raw:
        return None
    column = COLUMNS.get(name)
    if name == "id" or column in ("id", "owner_id"):
        return uuid.UUID(raw) if isinstance(raw, str) and parse_uuid(raw) is not None else None
    if column in _TIME_COLUMNS:
        return parse_time(raw)  # its UTC value in years 1..9999, or asyncpg overflows
    if column == "version":
        return raw if type(raw) is int and INTEGER[0] <= raw <= INTEGER[1] else None
    if column == "status":
        return raw if isinstance(raw, str) else None
    spec = rtype.properties[name]
    types = spec.get("type")
    types = {types} if isinstance(types, str) else set(types or ())
    if isinstance(raw, bool) or raw is None:
        return None
    numeric = ("integer" in types and type(raw) is int) or (
        "number" in types and isinstance(raw, int | float)
    )
    if not (numeric or ("string" in types and isinstance(raw, str))):
        return None
    return orjson.dumps(raw).decode()


def _keyset(listing: ListQuery, values: list[Any]) -> str:
    """Rows after the cursor's in the listing's order: a row comparison when every key runs the
    same way (an index range scan), the expanded OR form otherwise."""
    order = listing.order
    if len(values) != len(order):
        raise Problem(400, "cursor is not one this API made (or the sort changed)")
    sql = listing.sql
    params: list[str] = []
    for (name, _), raw in zip(order, values, strict=True):
        value = _cursor_value(listing.rtype, name, raw)
        if value is None:
            raise Problem(400, "cursor is not one this API made")
        cast = "uuid" if name == "id" else _cast(listing.rtype, name)
        params.append(f"{sql.param(value)}::{cast}")
    exprs = [listing._expr(name) for name, _ in order]
    directions = {desc for _, desc in order}
    if len(directions) == 1:
        op = "<" if directions.pop() else ">"
        return f"({', '.join(exprs)}) {op} ({', '.join(params)})"
    alternatives = []
    for i, (_, desc) in enumerate(order):
        equal = [f"{exprs[j]} = {params[j]}" for j in range(i)]
        alternatives.append(" AND ".join([*equal, f"{exprs[i]} {'<' if desc else '>'} {params[i]}"]))
    return "(" + " OR ".join(f"({a})" for a in alternatives) + ")"

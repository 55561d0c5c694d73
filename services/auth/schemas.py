"""JSON Schemas of the auth API: they validate request bodies and document the API."""

from __future__ import annotations

from typing import Any

ROLES = ["admin", "approver", "member"]

EMAIL: dict[str, Any] = {
    "type": "string",
    "maxLength": 254,
    "pattern": r"^[^@\s]+@[^@\s]+$",
    "x-pattern-message": "must be an email address",
    "examples": ["ada@example.com"],
}
PASSWORD: dict[str, Any] = {"type": "string", "minLength": 8, "maxLength": 1024, "writeOnly": True}
NAME: dict[str, Any] = {"type": "string", "maxLength": 200}
ROLE_LIST: dict[str, Any] = {
    "type": "array",
    "items": {"enum": ROLES},
    "minItems": 1,
    "uniqueItems": True,
    "description": "admin: everything; approver: approves and rejects events; member: default",
}
READ_ONLY: dict[str, Any] = {
    "id": {"type": "string", "format": "uuid", "readOnly": True},
    "createdAt": {"type": "string", "format": "date-time", "readOnly": True},
    "updatedAt": {"type": "string", "format": "date-time", "readOnly": True},
}

TOKEN_REQUEST: dict[str, Any] = {
    "type": "object",
    "properties": {
        "email": {"type": "string", "maxLength": 254},
        "password": {"type": "string", "maxLength": 1024},
    },
    "required": ["email", "password"],
    "additionalProperties": False,
}

USER: dict[str, Any] = {
    "type": "object",
    "properties": {
        **READ_ONLY,
        "email": EMAIL,
        "name": NAME,
        "roles": ROLE_LIST,
        "active": {"type": "boolean", "description": "false: the user cannot log in, tokens are refused"},
    },
    "required": ["id", "email", "name", "roles", "active", "createdAt", "updatedAt"],
}

USER_CREATE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "email": EMAIL,
        "password": PASSWORD,
        "name": NAME,
        "roles": ROLE_LIST,
        "active": {"type": "boolean"},
    },
    "required": ["email", "password"],
    "additionalProperties": False,
}

USER_REPLACE: dict[str, Any] = {
    "type": "object",
    "properties": {**READ_ONLY, **USER_CREATE["properties"]},
    "required": ["email", "name", "roles", "active"],
    "additionalProperties": False,
}

USER_PATCH: dict[str, Any] = {
    "type": "object",
    "properties": {**READ_ONLY, **USER_CREATE["properties"], "name": {**NAME, "type": ["string", "null"]}},
    "additionalProperties": False,
}

ME_PATCH: dict[str, Any] = {
    "type": "object",
    "properties": {
        **READ_ONLY,
        "email": EMAIL,
        "name": {**NAME, "type": ["string", "null"]},
        "password": PASSWORD,
        "currentPassword": {
            "type": "string",
            "maxLength": 1024,
            "writeOnly": True,
            "description": "needed to change email or password",
        },
    },
    "additionalProperties": False,
}

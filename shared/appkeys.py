"""Typed application state shared by every Herald service, declared in one place."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from shared.config import Settings

if TYPE_CHECKING:
    pass

ReadyCheck = Callable[[], Awaitable[None]]

SETTINGS = web.AppKey("settings", Settings)
SERVICE_NAME = web.AppKey("service_name", str)
DATABASE = web.AppKey["Database"]("database")
BROKER = web.AppKey["Broker"]("broker")
VERIFIER = web.AppKey["TokenVerifier"]("verifier")
READY_CHECKS = web.AppKey("ready_checks", list[ReadyCheck])
PUBLIC_PATHS = web.AppKey("public_paths", frozenset[str])

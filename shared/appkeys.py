"""Typed application state shared by every Herald service, declared in one place."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from shared.amqp import Broker
from shared.config import Settings
from shared.db import Database
from shared.verifier import TokenVerifier

ReadyCheck = Callable[[], Awaitable[None]]

SETTINGS = web.AppKey("settings", Settings)
SERVICE_NAME = web.AppKey("service_name", str)
DATABASE = web.AppKey("database", Database)
BROKER = web.AppKey("broker", Broker)
VERIFIER = web.AppKey("verifier", TokenVerifier)
READY_CHECKS = web.AppKey("ready_checks", list[ReadyCheck])
PUBLIC_PATHS = web.AppKey("public_paths", frozenset[str])
# Set once SIGTERM closed the listener: every answer then closes its connection (shared/service.py).
DRAINING = web.AppKey("draining", asyncio.Event)

"""The resource service: events and locations with their approval workflow. This is its
skeleton (health, database, broker, token check); the resources come with their own issue."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from shared.config import Settings
from shared.service import base_app, broker_ctx, database_ctx, verifier_ctx

MIGRATIONS = Path(__file__).parent / "migrations"
SCHEMA = "resource"


def create_app(settings: Settings) -> web.Application:
    app = base_app(settings, "resource")
    app.cleanup_ctx.append(database_ctx(SCHEMA, MIGRATIONS))
    app.cleanup_ctx.append(broker_ctx)
    app.cleanup_ctx.append(verifier_ctx())
    return app

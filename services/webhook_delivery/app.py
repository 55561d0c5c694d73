"""The webhook delivery service: subscriptions and the delivery worker. This is its skeleton
(health, database, broker, token check); subscriptions and delivery come with their own issue."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from services.webhook_delivery.delivery_handlers import add_delivery_routes
from services.webhook_delivery.engine import engine_ctx
from shared.config import Settings
from shared.service import base_app, broker_ctx, database_ctx, verifier_ctx

MIGRATIONS = Path(__file__).parent / "migrations"
SCHEMA = "webhook_delivery"


def create_app(settings: Settings) -> web.Application:
    app = base_app(settings, "webhook_delivery")
    app.cleanup_ctx.append(database_ctx(SCHEMA, MIGRATIONS))
    app.cleanup_ctx.append(broker_ctx)
    app.cleanup_ctx.append(verifier_ctx())
    if settings.webhook_worker:
        app.cleanup_ctx.append(engine_ctx)
    if settings.webhook_api:
        add_delivery_routes(app)
    return app

"""The webhook delivery service: the subscriptions API and the delivery worker, each switched on
by its own setting (`webhook_api`, `webhook_worker`), so workers scale as processes of their own."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from services.webhook_delivery.api import delivery_detail, delivery_handlers, replay, subscription_handlers
from services.webhook_delivery.api.delivery_detail_openapi import detail_paths
from services.webhook_delivery.api.delivery_openapi import delivery_paths
from services.webhook_delivery.api.openapi import document, subscription_paths
from services.webhook_delivery.api.recovery import recoveries_ctx
from services.webhook_delivery.engine.wiring import engine_ctx
from shared.config import Settings
from shared.openapi import add_fragment_route
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
        for module in (subscription_handlers, delivery_handlers, delivery_detail, replay):
            app.add_routes(module.routes)
        app.cleanup_ctx.append(recoveries_ctx)  # the background jobs of recover and replay
        add_fragment_route(app, document(subscription_paths(), delivery_paths(), detail_paths()))
    return app

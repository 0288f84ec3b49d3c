"""The gateway's application factory: each resource is opened and closed by its own
cleanup context and stored under a typed key."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from services.gateway.console import add_console_routes
from services.gateway.forwarding import enable_forwarding
from services.gateway.gatecloud.housekeeping import HOUSEKEEPING
from services.gateway.keys import BROKER, OBJECTS, SETTINGS, STORE
from services.gateway.openapi import openapi_document
from services.gateway.outbox import relay_ctx
from services.gateway.routes import ROUTES, add_routes
from services.gateway.views import base_url
from shared.api import MAX_BODY, dependency_middleware, error_middleware
from shared.auth import auth_middleware
from shared.broker import amqp_ready
from shared.health import add_health_routes
from shared.objects import open_objects
from shared.routing import add_head_and_options
from shared.runtime import open_broker
from shared.settings import Settings
from shared.store import open_store


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(ROUTES, base_url(request)))


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware, dependency_middleware, auth_middleware],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[MAX_BODY] = settings.max_body_bytes

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        async with open_store(settings, "conveyor-gateway") as store:
            app[STORE] = store
            yield

    async def broker_ctx(app: web.Application) -> AsyncIterator[None]:
        async with open_broker(settings, "conveyor-gateway", prefetch=1) as broker:
            app[BROKER] = broker
            yield

    async def objects_ctx(app: web.Application) -> AsyncIterator[None]:
        async with open_objects(settings) as objects:
            app[OBJECTS] = objects
            yield

    app.cleanup_ctx.extend([store_ctx, broker_ctx, objects_ctx, relay_ctx, *HOUSEKEEPING])
    add_health_routes(app, "gateway", {
        "rabbitmq": lambda: amqp_ready(app[BROKER].connection),
        "mongodb": lambda: app[STORE].ping(),
        "s3": lambda: app[OBJECTS].ping(),
    })
    app.router.add_get("/api/openapi.json", openapi)
    add_routes(app, ROUTES)
    enable_forwarding(app)
    add_console_routes(app)
    add_head_and_options(app)
    return app

"""The log endpoints are served by the logger service; the gateway passes them on, so that
clients reach every endpoint on one host and port with the same API key (the logger
authenticates and rate-limits them itself)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from services.gateway.keys import SETTINGS
from shared.auth import FORWARDED
from shared.proxy import client_session, forward

SESSION = web.AppKey("forwarding_session", aiohttp.ClientSession)


async def to_logger(request: web.Request) -> web.StreamResponse:
    return await forward(request.app[SESSION], request, request.app[SETTINGS].logger_base_url,
                         request.rel_url.raw_path_qs)


def enable_forwarding(app: web.Application) -> None:
    """The session forwarded requests go through, and the paths the gateway leaves for the
    logger to authenticate: those of the routes (in the route table, added before this)
    that `to_logger` serves."""
    async def session_ctx(app: web.Application) -> AsyncIterator[None]:
        async with client_session() as session:
            app[SESSION] = session
            yield

    app.cleanup_ctx.append(session_ctx)
    app[FORWARDED] = frozenset(
        resource.canonical for resource in app.router.resources()
        if any(route.handler is to_logger for route in resource)
    )

"""`GET /api/me`: who the API key belongs to, with each organization and the roles held in
it, so that a client (the web console) can tell what to offer, e.g. bundles for CONFIG."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from services.gateway.schemas import STRING, array, obj
from shared.auth import PRINCIPAL

SCHEMA: dict[str, Any] = obj({
    "user": STRING, "user_id": STRING,
    "organizations": array(obj({"id": STRING, "name": STRING, "roles": array(STRING)})),
})


async def me(request: web.Request) -> web.Response:
    principal = request[PRINCIPAL]
    organizations = sorted(principal.memberships.values(), key=lambda m: m.organization)
    return web.json_response({
        "user": principal.user,
        "user_id": principal.user_id,
        "organizations": [{"id": m.organization_id, "name": m.organization,
                           "roles": sorted(m.roles)} for m in organizations],
    })

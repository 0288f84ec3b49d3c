"""The one port of `conveyor dev`: `/healthz` and `/readyz` for the whole platform,
`/_services/NAME/...` for each service's own endpoints, and everything else to the gateway."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Mapping

import aiohttp
from aiohttp import web

from shared.health import failing_checks
from shared.proxy import client_session, forward

SESSION = web.AppKey("session", aiohttp.ClientSession)


def create_proxy(upstreams: Mapping[str, str], front: str = "gateway") -> web.Application:
    """`upstreams` maps a service name to its base URL, e.g. {"gateway": "http://..."}."""
    app = web.Application(client_max_size=0)

    async def session_ctx(app: web.Application) -> AsyncIterator[None]:
        async with client_session() as session:
            app[SESSION] = session
            yield

    app.cleanup_ctx.append(session_ctx)

    async def ready(base: str) -> None:
        async with app[SESSION].get(
            f"{base}/readyz", timeout=aiohttp.ClientTimeout(total=2.5)
        ) as response:
            if response.status != 200:
                body = await response.json(content_type=None)
                raise RuntimeError(", ".join(body.get("failing", {})) or "not ready")

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "alive", "service": "dev"})

    async def readyz(_: web.Request) -> web.Response:
        failing = await failing_checks(
            {name: functools.partial(ready, base) for name, base in upstreams.items()}
        )
        body: dict[str, object] = {
            "status": "not ready" if failing else "ready", "services": list(upstreams)
        }
        if failing:
            body["failing"] = failing
        return web.json_response(body, status=503 if failing else 200)

    async def services(_: web.Request) -> web.Response:
        return web.json_response({"services": {name: f"/_services/{name}/" for name in upstreams}})

    async def to_service(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        base = upstreams.get(name)
        if base is None:
            raise web.HTTPNotFound(text=f"no service {name!r}; see /_services/")
        raw = request.rel_url.raw_path_qs
        return await forward(app[SESSION], request, base, raw[raw.index(name) + len(name):])

    async def to_front(request: web.Request) -> web.StreamResponse:
        return await forward(app[SESSION], request, upstreams[front], request.rel_url.raw_path_qs)

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/_services/", services)
    app.router.add_route("*", "/_services/{name}/{tail:.*}", to_service)
    app.router.add_route("*", "/{tail:.*}", to_front)
    return app

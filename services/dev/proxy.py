"""The one port of `conveyor dev`: `/healthz` and `/readyz` for the whole platform,
`/_services/NAME/...` for each service's own endpoints, and everything else to the gateway."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Mapping

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from shared.health import failing_checks

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "host", "content-length",
})
SESSION = web.AppKey("session", aiohttp.ClientSession)


def _forwardable(headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in HOP_BY_HOP)


def create_proxy(upstreams: Mapping[str, str], front: str = "gateway") -> web.Application:
    """`upstreams` maps a service name to its base URL, e.g. {"gateway": "http://..."}."""
    app = web.Application(client_max_size=0)

    async def session_ctx(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, connect=5), auto_decompress=False
        ) as session:
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

    async def forward(request: web.Request, base: str, raw_path_qs: str) -> web.StreamResponse:
        """Pass the request on byte for byte (path and query stay encoded as sent)."""
        headers = _forwardable(request.headers)
        headers["X-Forwarded-Host"] = request.host
        headers["X-Forwarded-Proto"] = request.scheme
        if request.remote:
            headers["X-Forwarded-For"] = request.remote
        try:
            upstream_cm = app[SESSION].request(
                request.method, URL(f"{base}{raw_path_qs}", encoded=True), headers=headers,
                data=request.content if request.body_exists else None, allow_redirects=False,
            )
            async with upstream_cm as upstream:
                response = web.StreamResponse(
                    status=upstream.status, reason=upstream.reason,
                    headers=_forwardable(upstream.headers),
                )
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
                return response
        except (TimeoutError, aiohttp.ClientConnectionError):
            return web.json_response(
                {"error": f"the service at {base} does not answer"}, status=502
            )

    async def to_service(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        base = upstreams.get(name)
        if base is None:
            raise web.HTTPNotFound(text=f"no service {name!r}; see /_services/")
        raw = request.rel_url.raw_path_qs
        return await forward(request, base, raw[raw.index(name) + len(name):])

    async def to_front(request: web.Request) -> web.StreamResponse:
        return await forward(request, upstreams[front], request.rel_url.raw_path_qs)

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/_services/", services)
    app.router.add_route("*", "/_services/{name}/{tail:.*}", to_service)
    app.router.add_route("*", "/{tail:.*}", to_front)
    return app

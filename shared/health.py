"""`GET /healthz` (the process is alive) and `GET /readyz` (200 when every dependency
answers, 503 naming each one that does not), served by every service, the worker too (which
is why this module names no store: see `shared.api.dependency_middleware` for the APIs)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager

from aiohttp import web

Check = Callable[[], Awaitable[None]]
CHECK_TIMEOUT = 3.0


async def failing_checks(checks: Mapping[str, Check]) -> dict[str, str]:
    """Run every check at once; map the name of each one that failed to why."""

    async def run(check: Check) -> str | None:
        try:
            await asyncio.wait_for(check(), CHECK_TIMEOUT)
        except TimeoutError:
            return f"no answer within {CHECK_TIMEOUT:g}s"
        except Exception as exc:  # a check reports any failure as "not ready", never crashes
            return str(exc) or type(exc).__name__
        return None

    names = list(checks)
    results = await asyncio.gather(*(run(checks[name]) for name in names))
    return {name: result for name, result in zip(names, results, strict=True) if result}


def add_health_routes(app: web.Application, service: str, checks: Mapping[str, Check]) -> None:
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "alive", "service": service})

    async def readyz(_: web.Request) -> web.Response:
        failing = await failing_checks(checks)
        if failing:
            return web.json_response(
                {"status": "not ready", "service": service, "failing": failing}, status=503
            )
        return web.json_response({"status": "ready", "service": service, "checks": list(checks)})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)


@asynccontextmanager
async def serve_app(app: web.Application, host: str, port: int) -> AsyncIterator[int]:
    """Serve `app` until the block ends; yields the bound port (useful with port 0)."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5.0)
    try:
        # Inside the `try`: a failed startup still closes the contexts it entered.
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()

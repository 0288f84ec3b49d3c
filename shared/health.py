"""`GET /healthz` (the process is alive) and `GET /readyz` (200 when every dependency
answers, 503 naming each one that does not), served by every service; and the middleware
that answers any request a dependency failed the same way: 503, `Retry-After`, its name."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager

import aiormq
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from shared.errors import DependencyUnavailable
from shared.store import UNREACHABLE, unavailable
from shared.xmlforms import respond

log = structlog.get_logger(__name__)
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


# A broker connection that is down or reconnecting (a bare TimeoutError is left out: it says
# nothing about which server was slow).
BROKER_DOWN: tuple[type[BaseException], ...] = (
    aiormq.exceptions.AMQPConnectionError,
    aiormq.exceptions.ChannelInvalidStateError,
    aiormq.exceptions.ConnectionClosed,
)


def _as_unavailable(exc: BaseException) -> DependencyUnavailable | None:
    if isinstance(exc, DependencyUnavailable):
        return exc
    if isinstance(exc, UNREACHABLE):
        return unavailable(exc)
    if isinstance(exc, BROKER_DOWN):
        return DependencyUnavailable("rabbitmq", "RabbitMQ did not answer: "
                                     f"{str(exc) or type(exc).__name__}")
    return None


@web.middleware
async def dependency_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A request that failed because MongoDB or RabbitMQ did not answer is a 503 naming the
    server, with `Retry-After`: the client may simply try again (never a 500). Placed inside
    the error middleware and outside authentication, which reads the store too."""
    try:
        return await handler(request)
    except Exception as exc:
        down = _as_unavailable(exc)
        if down is None:
            raise
    log.warning("dependency unavailable", dependency=down.dependency, error=str(down),
                method=request.method, path=request.path)
    return respond(request, {"error": down.public, "status": 503, "dependency": down.dependency},
                   "error", status=503, headers={"Retry-After": str(down.retry_after)})


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

"""One error middleware: domain errors become JSON bodies, unexpected ones are logged with
their traceback and answered with a 500 that leaks nothing."""

from __future__ import annotations

import uuid

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

log = structlog.get_logger(__name__)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request.headers.get("X-Request-ID") or uuid.uuid4().hex
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.empty_body or exc.content_type == "application/json":
            raise
        return web.json_response(
            {"error": exc.reason, "status": exc.status}, status=exc.status,
            headers={key: value for key, value in exc.headers.items()
                     if key.lower() not in {"content-type", "content-length"}},
        )
    except Exception:
        log.exception("request failed", method=request.method, path=request.path)
        return web.json_response(
            {"error": "internal error", "request_id": request_id, "status": 500}, status=500
        )
    response.headers["X-Request-ID"] = request_id
    return response

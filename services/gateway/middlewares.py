"""One error middleware: domain errors become JSON bodies (aiohttp's own HTTP errors too),
unexpected ones are logged with their traceback and answered with a 500 that leaks nothing."""

from __future__ import annotations

import uuid

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from services.gateway.errors import ApiError
from services.gateway.keys import SETTINGS

log = structlog.get_logger(__name__)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request.headers.get("X-Request-ID") or uuid.uuid4().hex
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    try:
        response = await handler(request)
    except ApiError as exc:
        response = web.json_response(exc.body(), status=exc.status, headers=exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        message = exc.reason
        if exc.status == 413:
            limit = request.app[SETTINGS].max_body_bytes
            message = f"request body too large (limit {limit} bytes)"
        response = web.json_response(
            {"error": message, "status": exc.status}, status=exc.status,
            headers={key: value for key, value in exc.headers.items()
                     if key.lower() not in {"content-type", "content-length"}},
        )
    except Exception:
        log.exception("request failed", method=request.method, path=request.path)
        response = web.json_response(
            {"error": "internal error", "request_id": request_id, "status": 500}, status=500
        )
    response.headers["X-Request-ID"] = request_id
    return response


"""What every HTTP API of Conveyor shares: errors answered as JSON, or XML when asked (a
status, a message, and for bad input the fields at fault), the one error middleware, and the
store's app key, and the middleware that answers any request a dependency failed the same
way: 503, `Retry-After`, its name."""

from __future__ import annotations

import json
import uuid
from typing import Any

import aiormq
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from shared.errors import DependencyUnavailable
from shared.nesting import (
    json_nesting_exceeds,
    json_values_exceed,
    lone_surrogate_field,
    too_deep_message,
    too_many_values_message,
)
from shared.numbers import whole_number
from shared.store import UNREACHABLE, Store, unavailable
from shared.xmlforms import respond

log = structlog.get_logger(__name__)
STORE = web.AppKey("store", Store)
MAX_BODY = web.AppKey("max_body", int)


class ApiError(Exception):
    def __init__(
        self, status: int, message: str, errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None, details: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or []
        self.headers = headers or {}
        self.details = details or {}

    def body(self) -> dict[str, object]:
        """`details`: more for programs to act on (say, the states an action is valid in)."""
        body: dict[str, object] = {"error": self.message, "status": self.status, **self.details}
        if self.errors:
            body["errors"] = self.errors
        return body


def bad_request(errors: list[dict[str, str]], message: str = "invalid request") -> ApiError:
    return ApiError(400, message, errors)


def parse_json_body(raw: bytes) -> Any:
    """A request body's JSON, or a 400 on field `body` saying why not (a lone surrogate: on
    the field that holds it). Run it off the event loop for a large body."""
    if json_values_exceed(raw):
        raise bad_request([{"field": "body", "message": too_many_values_message()}])
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise bad_request([{"field": "body", "message": f"is not valid JSON: {exc}"}]) from None
    except RecursionError:
        value = None
        deep = True
    else:
        deep = json_nesting_exceeds(raw)
    if deep:
        raise bad_request([{"field": "body", "message": too_deep_message()}])
    field = lone_surrogate_field(raw, value)
    if field is not None:
        raise bad_request([{"field": field, "message": "holds a lone UTF-16 surrogate "
                            "escape (\\ud800-\\udfff without its pair), which is no character"}])
    return value


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} not found")


def int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """A whole-number query parameter within [low, high], or a 400 naming it."""
    raw = request.query.get(name)
    if raw is None:
        return default
    number = whole_number(raw)
    if number is None or not low <= number <= high:
        raise bad_request([{"field": name, "message": f"must be a whole number {low}-{high}"}])
    return number


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Domain errors become JSON bodies (aiohttp's own HTTP errors too); unexpected ones are
    logged with their traceback and answered with a 500 that leaks nothing."""
    request_id = request.headers.get("X-Request-ID") or uuid.uuid4().hex
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    try:
        response = await handler(request)
    except ApiError as exc:
        response = respond(request, exc.body(), "error", status=exc.status,
                           headers=exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        message = exc.reason
        if exc.status == 413:
            message = f"request body too large (limit {request.app.get(MAX_BODY, 0)} bytes)"
        response = respond(
            request, {"error": message, "status": exc.status}, "error", status=exc.status,
            headers={key: value for key, value in exc.headers.items()
                     if key.lower() not in {"content-type", "content-length"}},
        )
    except Exception:
        log.exception("request failed", method=request.method, path=request.path)
        response = respond(request, {"error": "internal error", "request_id": request_id,
                                     "status": 500}, "error", status=500)
    response.headers["X-Request-ID"] = request_id
    return response


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

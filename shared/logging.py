"""structlog, configured once per process: context variables first, UTC ISO timestamps,
JSON lines when the output is not a terminal and a readable console when it is. Every line,
the standard library's too, has its secrets masked on the way out (`shared.redaction`)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Literal

import structlog
from structlog.typing import EventDict, WrappedLogger

from shared.redaction import REDACTED, SECRET_KEY, mask_text

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}


def _masked_fields(fields: Mapping[str, object]) -> dict[str, object]:
    return {key: REDACTED if SECRET_KEY.search(str(key)) and item not in (None, "")
            else _masked(item) for key, item in fields.items()}


def _masked(value: object) -> object:
    if isinstance(value, str):
        return mask_text(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, Mapping):
        return _masked_fields(value)
    if isinstance(value, (list, tuple)):
        return [_masked(item) for item in value]
    # A URL object, an exception: rendered as text anyway, so masked as text.
    return mask_text(str(value))


def mask_secrets(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """A structlog processor: every value of the line with its secrets masked."""
    return _masked_fields(event)


class MaskingFilter(logging.Filter):
    """The same for the standard library's records (aiohttp's, urllib3's warnings)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_text(logging.Formatter().formatException(record.exc_info))
        return True


def configure_logging(
    level: str = "info", fmt: Literal["auto", "json", "console"] = "auto"
) -> None:
    use_console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer()
        if use_console
        else structlog.processors.JSONRenderer()
    )
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # Tracebacks without each frame's local variables: a local may hold a credential that no
    # pattern recognises as one.
    processors.append(structlog.processors.format_exc_info if use_console
                      else structlog.processors.ExceptionRenderer(
                          structlog.tracebacks.ExceptionDictTransformer(show_locals=False)))
    processors += [mask_secrets, renderer]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Libraries log through the standard library; keep their warnings, drop their chatter.
    logging.basicConfig(level=max(_LEVELS[level], logging.WARNING), stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter())

"""One root exception with categories under it, so callers can catch by meaning."""

from __future__ import annotations


class ConveyorError(Exception):
    """Root of every error Conveyor raises on purpose."""


class ConfigError(ConveyorError):
    """A setting or command-line option is invalid; the message names it and says why."""


class DependencyError(ConveyorError):
    """A server Conveyor needs (RabbitMQ, MongoDB, S3) cannot be reached or set up."""


class MessageError(ConveyorError):
    """A message could not be decoded or is invalid; it is dead-lettered with this reason."""


class PublishError(ConveyorError):
    """The broker did not take a message: it was unroutable or negatively confirmed."""


class TransientError(ConveyorError):
    """A failure that may pass: the work is tried again after a backoff."""


class Retry(TransientError):
    """Ask for another attempt, optionally after a given delay in seconds (arq's `Retry`)."""

    def __init__(self, reason: str = "retry requested", delay: float | None = None) -> None:
        super().__init__(reason)
        self.delay = delay


class PermanentError(ConveyorError):
    """A failure that another attempt cannot fix: dead-lettered (or failed) at once."""

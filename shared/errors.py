"""One root exception with categories under it, so callers can catch by meaning."""

from __future__ import annotations


class ConveyorError(Exception):
    """Root of every error Conveyor raises on purpose."""


class ConfigError(ConveyorError):
    """A setting or command-line option is invalid; the message names it and says why."""


class DependencyError(ConveyorError):
    """A server Conveyor needs (RabbitMQ, MongoDB, S3) cannot be reached or set up."""


class DependencyUnavailable(DependencyError):
    """A server a request needs did not answer: the request may succeed later (HTTP 503
    with `Retry-After`). `dependency` names it as `/readyz` does: mongodb, rabbitmq, s3."""

    NAMES = {"mongodb": "MongoDB", "rabbitmq": "RabbitMQ", "s3": "S3"}

    def __init__(self, dependency: str, reason: str, retry_after: int = 5) -> None:
        super().__init__(reason)
        self.dependency = dependency
        self.retry_after = retry_after

    @property
    def public(self) -> str:
        """What a client is told: no addresses or server messages (those go to the log)."""
        name = self.NAMES.get(self.dependency, self.dependency)
        return f"{name} is unavailable; try again in {self.retry_after} s"


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

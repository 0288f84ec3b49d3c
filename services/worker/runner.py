"""Runs one task delivery: reports its start, runs the tool in its own scratch directory,
and reports how it ended. A credential never reaches an event or a log line."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
import uuid
from pathlib import Path

import structlog
from pydantic import ValidationError

from services.worker.context import ToolContext
from services.worker.tools import TOOLS
from shared.broker import Publisher
from shared.consumer import Delivery
from shared.errors import PermanentError, TransientError
from shared.jobs import redact_text, secret_values
from shared.messages import TaskDispatch, TaskError, TaskFailed, TaskStarted, TaskSucceeded
from shared.objects import ObjectStore
from shared.settings import Settings
from shared.toolspecs import PARAMETERS, field_errors
from shared.topology import EVENTS_EXCHANGE

log = structlog.get_logger(__name__)


def worker_identity() -> str:
    """Host, process and a random tag: unique even for several workers in one process."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class TaskRunner:
    def __init__(
        self, publisher: Publisher, objects: ObjectStore, settings: Settings, worker_id: str
    ) -> None:
        self.publisher = publisher
        self.objects = objects
        self.settings = settings
        self.worker_id = worker_id

    async def on_task(self, delivery: Delivery) -> None:
        task = delivery.message
        if not isinstance(task, TaskDispatch):
            raise PermanentError(f"{task.type} does not belong on a task queue")
        structlog.contextvars.bind_contextvars(task_id=task.task_id, tool=task.tool,
                                               task_attempt=task.attempt)
        secrets = secret_values(task.parameters)
        model = PARAMETERS.get(task.tool)
        if model is None:
            await self._failed(task, "UnknownTool", f"no tool named {task.tool!r}", secrets)
            return
        try:
            parameters = model.model_validate(task.parameters)
        except ValidationError as exc:
            problems = "; ".join(f"{e['field']}: {e['message']}"
                                 for e in field_errors(exc, "parameters"))
            await self._failed(task, "InvalidParameters", problems, secrets)
            return

        await self.publisher.publish(EVENTS_EXCHANGE, "task.started", TaskStarted(
            job_id=task.job_id, task_id=task.task_id, attempt=task.attempt,
            worker_id=self.worker_id,
        ))
        scratch = Path(await asyncio.to_thread(
            tempfile.mkdtemp, prefix=f"conveyor-{task.job_id}-{task.task_id}-",
            dir=self.settings.scratch_dir or None,
        ))
        context = ToolContext(
            job_id=task.job_id, task_id=task.task_id, attempt=task.attempt, region=task.region,
            workspace=task.workspace, scratch=scratch, objects=self.objects,
            publisher=self.publisher, settings=self.settings, secrets=secrets,
        )
        try:
            await TOOLS[task.tool](context, parameters)
        except (PermanentError, TransientError) as exc:
            await context.log(f"failed: {exc}", level="error")
            await self._failed(task, type(exc).__name__, str(exc), secrets,
                               retryable=isinstance(exc, TransientError))
            return
        except Exception as exc:
            log.exception("tool crashed")
            await self._failed(task, type(exc).__name__, str(exc), secrets)
            return
        finally:
            await asyncio.to_thread(shutil.rmtree, scratch, True)
        await self.publisher.publish(EVENTS_EXCHANGE, "task.succeeded", TaskSucceeded(
            job_id=task.job_id, task_id=task.task_id, attempt=task.attempt,
            outputs=context.outputs, result=context.result, metrics=context.metrics,
        ))
        log.info("task succeeded", outputs=len(context.outputs))

    async def _failed(
        self, task: TaskDispatch, error_class: str, message: str, secrets: list[str],
        retryable: bool = False,
    ) -> None:
        shown = redact_text(message, secrets)[:4000]
        await self.publisher.publish(EVENTS_EXCHANGE, "task.failed", TaskFailed(
            job_id=task.job_id, task_id=task.task_id, attempt=task.attempt,
            error=TaskError(error_class=error_class, message=shown), retryable=retryable,
        ))
        log.warning("task failed", error_class=error_class, error=shown)

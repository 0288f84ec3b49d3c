"""Runs one task delivery: reports its start, runs the tool, reports how it ended."""

from __future__ import annotations

import os
import socket

import structlog
from pydantic import ValidationError

from services.worker.tools import TOOLS, ToolContext
from shared.broker import Publisher
from shared.consumer import Delivery
from shared.errors import PermanentError
from shared.messages import (
    TaskDispatch,
    TaskError,
    TaskFailed,
    TaskProgress,
    TaskStarted,
    TaskSucceeded,
)
from shared.topology import EVENTS_EXCHANGE

log = structlog.get_logger(__name__)


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class TaskRunner:
    def __init__(self, publisher: Publisher, worker_id: str) -> None:
        self.publisher = publisher
        self.worker_id = worker_id

    async def on_task(self, delivery: Delivery) -> None:
        task = delivery.message
        if not isinstance(task, TaskDispatch):
            raise PermanentError(f"{task.type} does not belong on a task queue")
        structlog.contextvars.bind_contextvars(task_id=task.task_id, tool=task.tool)
        ref = {"job_id": task.job_id, "task_id": task.task_id, "attempt": task.attempt}
        tool = TOOLS.get(task.tool)
        if tool is None:
            await self._failed(task, "UnknownTool", f"no tool named {task.tool!r}")
            return
        try:
            parameters = tool.parameters.model_validate(task.parameters)
        except ValidationError as exc:
            await self._failed(task, "InvalidParameters", str(exc))
            return

        async def report_progress(percent: float) -> None:
            await self.publisher.publish(
                EVENTS_EXCHANGE, "task.progress", TaskProgress(**ref, progress=percent)
            )

        await self.publisher.publish(
            EVENTS_EXCHANGE, "task.started", TaskStarted(**ref, worker_id=self.worker_id)
        )
        context = ToolContext(task.job_id, task.task_id, task.attempt, task.workspace,
                              report_progress)
        await tool.run(context, parameters)
        await self.publisher.publish(EVENTS_EXCHANGE, "task.succeeded", TaskSucceeded(
            **ref, outputs=context.outputs, result=context.result,
        ))
        log.info("task succeeded")

    async def _failed(self, task: TaskDispatch, error_class: str, message: str) -> None:
        await self.publisher.publish(EVENTS_EXCHANGE, "task.failed", TaskFailed(
            job_id=task.job_id, task_id=task.task_id, attempt=task.attempt,
            error=TaskError(error_class=error_class, message=message),
        ))
        log.warning("task failed", error_class=error_class, error=message)

"""Runs one task delivery.

The delivery is acked when the task ends, so the prefetch (the worker's concurrency) bounds
what the broker hands a worker: it never takes more than it can run. While the tool runs the
worker sends a heartbeat every few seconds; if they stop (the worker froze), or the worker's
control queue vanishes (it died), the scheduler tries the task again as a new attempt. On
SIGTERM a task still running after the grace period is handed back at once (reported as a
retryable failure, and acked); a user's stop cancels it within a moment. A credential never
reaches an event or a log line.

Delivery is at least once: a tool that outlasts the broker's consumer timeout (30 min by
default; raise it for long tools) has its channel closed and its delivery redelivered, a
broker restart returns what was unacked, and the scheduler sends a dispatch again when it
seems lost. So one attempt may arrive twice: a worker runs an attempt once (it remembers the
attempts it started and acks a second copy at once), and the scheduler stops, without a word,
a second start elsewhere that it did not accept (a `CancelTask` naming this worker)."""

from __future__ import annotations

import asyncio
import collections
import os
import shutil
import socket
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import structlog
from pydantic import BaseModel, ValidationError

from services.worker.context import ToolContext
from services.worker.tools import TOOLS
from shared.broker import CONNECTION_ERRORS, Publisher
from shared.consumer import Delivery
from shared.errors import PermanentError, TransientError
from shared.messages import (
    CancelTask,
    TaskDispatch,
    TaskError,
    TaskFailed,
    TaskStarted,
    TaskSucceeded,
)
from shared.numbers import whole_number
from shared.objects import ObjectStore
from shared.periodic import Periodic
from shared.redaction import redact_text, secret_values
from shared.secrets import SealedValueError, open_sealed
from shared.settings import Settings
from shared.toolspecs import PARAMETERS, field_errors
from shared.topology import EVENTS_EXCHANGE

log = structlog.get_logger(__name__)
TaskKey = tuple[str, int]
AttemptKey = tuple[str, int, int]
STOPPED_MEMORY = 600.0
STARTED_MEMORY = 10_000  # attempts remembered as started here, newest kept
# How a tool fails on purpose; a lost broker connection counts as passing trouble too.
SCRATCH_PREFIX = "conveyor-w"
TOOL_FAILURES: tuple[type[BaseException], ...] = (
    PermanentError, TransientError, *CONNECTION_ERRORS,
)


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
        self._running: dict[TaskKey, tuple[int, asyncio.Task[None]]] = {}  # (attempt, run)
        self._stopped: set[TaskKey] = set()
        self._refused: set[TaskKey] = set()  # starts the scheduler did not accept
        # Refusals of attempts not (yet) running here: one may come before its run exists.
        self._refusals: collections.OrderedDict[AttemptKey, None] = collections.OrderedDict()
        self._started: collections.OrderedDict[AttemptKey, None] = collections.OrderedDict()
        # Jobs stopped lately (when, and each task's attempt then): a task of the stopped
        # run still queued is not run when it arrives; one of a later run is.
        self._stopped_jobs: dict[str, tuple[float, dict[int, int]]] = {}

    async def on_task(self, delivery: Delivery) -> None:
        task = delivery.message
        if not isinstance(task, TaskDispatch):
            raise PermanentError(f"{task.type} does not belong on a task queue")
        structlog.contextvars.bind_contextvars(task_id=task.task_id, tool=task.tool,
                                               task_attempt=task.attempt)
        try:
            task = task.model_copy(update={"parameters": open_sealed(task, self.settings)})
        except SealedValueError as exc:
            await self._failed(task, "SealedValueError", str(exc), [])
            return
        secrets = secret_values(task.parameters)
        if self._of_stopped_run(task):
            await self._failed(task, "Cancelled", "the job was stopped", secrets)
            return
        attempt_key = (task.job_id, task.task_id, task.attempt)
        if attempt_key in self._started:
            log.info("duplicate dispatch refused: this attempt already started here")
            return
        parameters = await self._parameters(task, secrets)
        if parameters is None:
            return
        self._started[attempt_key] = None
        try:
            await self.publisher.publish(EVENTS_EXCHANGE, "task.started", TaskStarted(
                job_id=task.job_id, task_id=task.task_id, attempt=task.attempt,
                worker_id=self.worker_id,
            ))
        except BaseException:
            del self._started[attempt_key]  # not started: its redelivery may run here
            raise
        while len(self._started) > STARTED_MEMORY:
            self._started.popitem(last=False)
        scratch = Path(await asyncio.to_thread(
            tempfile.mkdtemp, prefix=scratch_prefix(task.job_id, task.task_id),
            dir=self.settings.scratch_dir or None,
        ))
        context = ToolContext(
            job_id=task.job_id, task_id=task.task_id, attempt=task.attempt, region=task.region,
            workspace=task.workspace, scratch=scratch, objects=self.objects,
            publisher=self.publisher, settings=self.settings, secrets=secrets,
        )
        key = (task.job_id, task.task_id)
        run = asyncio.create_task(TOOLS[task.tool](context, parameters))
        self._running[key] = (task.attempt, run)
        if attempt_key in self._refusals:  # refused while it was being set up
            self._refused.add(key)
            run.cancel()
        heartbeat = Periodic("heartbeat", context.beat, self.settings.heartbeat_seconds)
        heartbeat.start()
        try:
            await self._finish(delivery, context, run, secrets)
        finally:
            await heartbeat.stop()
            await asyncio.shield(context.close())
            self._running.pop(key, None)
            self._stopped.discard(key)
            self._refused.discard(key)
            await asyncio.to_thread(shutil.rmtree, scratch, True)

    def _of_stopped_run(self, task: TaskDispatch) -> bool:
        stopped = self._stopped_jobs.get(task.job_id)
        if stopped is None or time.monotonic() - stopped[0] >= STOPPED_MEMORY:
            return False
        attempts = stopped[1]
        return not attempts or task.attempt <= attempts.get(task.task_id, 0)

    async def _parameters(self, task: TaskDispatch, secrets: list[str]) -> BaseModel | None:
        model = PARAMETERS.get(task.tool)
        if model is None:
            await self._failed(task, "UnknownTool", f"no tool named {task.tool!r}", secrets)
            return None
        try:
            return model.model_validate(task.parameters)
        except ValidationError as exc:
            problems = "; ".join(f"{e['field']}: {e['message']}"
                                 for e in field_errors(exc, "parameters"))
            await self._failed(task, "InvalidParameters", problems, secrets)
            return None

    async def _finish(self, delivery: Delivery, context: ToolContext,
                      run: asyncio.Task[None], secrets: list[str]) -> None:
        task = delivery.message
        assert isinstance(task, TaskDispatch)
        key = (task.job_id, task.task_id)
        try:
            await run
        except asyncio.CancelledError:
            if key in self._refused and not _current_task_cancelling():
                log.warning("start not accepted by the scheduler; stopped without a report")
                return
            if key in self._stopped and not _current_task_cancelling():
                log.info("task stopped by request")
                await self._failed(task, "Cancelled", "stopped on request", secrets)
                return
            # Shutdown past the grace period: hand the task back now, not after a timeout.
            run.cancel()
            await asyncio.shield(self._hand_back(delivery, secrets))
            raise
        except TOOL_FAILURES as exc:
            await context.log(f"failed: {exc}", level="error")
            await context.close()
            await self._failed(task, type(exc).__name__, str(exc), secrets,
                               retryable=not isinstance(exc, PermanentError))
            return
        except Exception as exc:
            log.exception("tool crashed")
            await self._failed(task, type(exc).__name__, str(exc), secrets)
            return
        # The outcome rides out a broker outage for as long as the scheduler waits before
        # it gives the task up as silent; past that, the sweeper retries the task.
        await context.close()  # the log before the outcome
        await self.publisher.publish_patiently(EVENTS_EXCHANGE, "task.succeeded", TaskSucceeded(
            job_id=task.job_id, task_id=task.task_id, attempt=task.attempt,
            outputs=context.outputs, result=context.result, metrics=context.metrics,
        ), within=self.settings.task_silence_seconds)
        log.info("task succeeded", outputs=len(context.outputs))

    async def _hand_back(self, delivery: Delivery, secrets: list[str]) -> None:
        """The scheduler retries a task reported stopped with its worker; the delivery is
        then settled, so that it does not come back as a second copy of this attempt."""
        assert isinstance(delivery.message, TaskDispatch)
        await self._failed(delivery.message, "WorkerStopped",
                           "the worker stopped before the task ended", secrets, retryable=True)
        await delivery.ack_now()

    async def on_control(self, delivery: Delivery) -> None:
        """A user stopped a job: cancel its task if it runs here."""
        message = delivery.message
        if not isinstance(message, CancelTask):
            return
        if message.worker_id is not None:
            self._refuse(message)
            return
        now = time.monotonic()
        self._stopped_jobs = {job: stopped for job, stopped in self._stopped_jobs.items()
                              if now - stopped[0] < STOPPED_MEMORY}
        self._stopped_jobs[message.job_id] = (now, message.attempts)
        for key, (attempt, run) in list(self._running.items()):
            if key[0] == message.job_id and (message.task_id in (None, key[1])) \
                    and attempt <= message.attempts.get(key[1], 1 << 62):
                # (A late stop of an earlier run leaves a later run's attempt alone.)
                self._stopped.add(key)
                run.cancel()

    def _refuse(self, message: CancelTask) -> None:
        """Stop the named attempts if they run here (and only here); nothing is reported, as
        the scheduler did not accept them."""
        if message.worker_id != self.worker_id:
            return
        for task_id, attempt in message.attempts.items():
            self._refusals[(message.job_id, task_id, attempt)] = None
        while len(self._refusals) > STARTED_MEMORY:
            self._refusals.popitem(last=False)
        for key, (attempt, run) in list(self._running.items()):
            if key[0] == message.job_id and message.attempts.get(key[1]) == attempt:
                self._refused.add(key)
                run.cancel()

    async def _failed(
        self, task: TaskDispatch, error_class: str, message: str, secrets: list[str],
        retryable: bool = False,
    ) -> None:
        shown = redact_text(message, secrets)[:4000]
        await self.publisher.publish_patiently(EVENTS_EXCHANGE, "task.failed", TaskFailed(
            job_id=task.job_id, task_id=task.task_id, attempt=task.attempt,
            error=TaskError(error_class=error_class, message=shown), retryable=retryable,
        ), within=self.settings.task_silence_seconds)
        log.warning("task failed", error_class=error_class, error=shown)


def scratch_prefix(job_id: str, task_id: int) -> str:
    """Names a task's scratch directory after this process, so that a worker starting later
    can tell the directories of a worker that died (see `remove_orphaned_scratch`)."""
    return f"{SCRATCH_PREFIX}{os.getpid()}-{job_id}-{task_id}-"


def remove_orphaned_scratch(scratch_dir: str | None) -> int:
    """Remove the scratch directories left by workers that no longer run (killed, or lost
    with their machine); returns how many. Directories of live workers are left alone."""
    base = Path(scratch_dir or tempfile.gettempdir())
    removed = 0
    for path in base.glob(f"{SCRATCH_PREFIX}*"):
        pid = whole_number(path.name[len(SCRATCH_PREFIX):].split("-", 1)[0])
        if pid is None or not path.is_dir() or _alive(pid):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed += 1
    if removed:
        log.info("removed scratch directories of workers that died", count=removed)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _current_task_cancelling() -> bool:
    """Whether the coroutine itself is being cancelled (shutdown), not only the tool."""
    current: Any = asyncio.current_task()
    return bool(current is not None and current.cancelling())

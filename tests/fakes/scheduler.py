"""The scheduler's `Machine` on the fake store and publisher, with helpers that send it a
worker's events as the events consumer would."""

from __future__ import annotations

from datetime import UTC, datetime

from services.scheduler.machine import Machine
from shared.jobs import Status, new_job_document, task_key
from shared.jobspec import JobSpec
from shared.messages import (
    CancelTask,
    TaskDispatch,
    TaskError,
    TaskFailed,
    TaskStarted,
    TaskSucceeded,
)
from shared.store import Document
from shared.topology import CONTROL_EXCHANGE
from tests.fakes.broker import FakePublisher
from tests.fakes.store import FakeStore, fake_store

JOB = "j-unit-1"
TOOL = "debug:sleep"
Q, R, C, F, X = Status.QUEUED, Status.RUNNING, Status.COMPLETED, Status.FAILED, Status.CANCELLED


class Scheduler:
    def __init__(self) -> None:
        self.store: FakeStore = fake_store()
        self.publisher = FakePublisher()
        self.finished: list[Document] = []
        self.machine = Machine(self.store, self.publisher, self._final)

    async def _final(self, job: Document) -> None:
        self.finished.append(job)

    async def submit(self, tasks: int = 2) -> Document:
        spec = JobSpec.model_validate(
            {"tasks": [{"tool": TOOL, "parameters": {"seconds": 0}}] * tasks})
        job = new_job_document(
            JOB, spec, region="local", organization_id="o1", organization="org",
            user_id="u1", user="ann", job_bundle_id=None, job_bundle=None,
            now=datetime.now(UTC))
        await self.store.jobs.insert_one(job)
        await self.machine.advance(job, interrupted=False)
        return await self.job()

    async def job(self) -> Document:
        found: Document | None = await self.store.jobs.find_one({"_id": JOB})
        assert found is not None
        return found

    async def task(self, task_id: int) -> Document:
        task: Document = (await self.job())["tasks"][task_key(task_id)]
        return task

    def dispatches(self) -> list[TaskDispatch]:
        return [m for m in self.publisher.envelopes() if isinstance(m, TaskDispatch)]

    def cancels(self) -> list[CancelTask]:
        return [m for m in self.publisher.envelopes(CONTROL_EXCHANGE)
                if isinstance(m, CancelTask)]

    async def start(self, task_id: int = 1, attempt: int = 1, worker: str = "w1") -> None:
        await self.machine.on_started(TaskStarted(
            job_id=JOB, task_id=task_id, attempt=attempt, worker_id=worker))

    async def succeed(self, task_id: int = 1, attempt: int = 1) -> None:
        await self.machine.on_succeeded(TaskSucceeded(
            job_id=JOB, task_id=task_id, attempt=attempt, result={"n": task_id}), False)

    async def fail(self, task_id: int = 1, attempt: int = 1, retryable: bool = False) -> None:
        await self.machine.on_failed(TaskFailed(
            job_id=JOB, task_id=task_id, attempt=attempt, retryable=retryable,
            error=TaskError(error_class="Boom", message="it broke")), False)


def statuses(job: Document) -> tuple[Status, list[Status]]:
    tasks = sorted(job["tasks"].values(), key=lambda t: t["id"])
    return Status(job["status"]), [Status(t["status"]) for t in tasks]

"""The scheduler's state changes. Each is one conditional update (compare-and-set on status,
dispatch flag and attempt), so a duplicate message, a late message from an earlier attempt,
or a second scheduler replica changes nothing it should not."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from pymongo import ReturnDocument

from services.scheduler.plan import Action, next_step
from shared.broker import Publisher, build_message
from shared.jobs import Status, ordered_tasks, task_key, task_path, workspace_prefix
from shared.messages import (
    CancelTask,
    TaskDispatch,
    TaskError,
    TaskFailed,
    TaskProgress,
    TaskStarted,
    TaskSucceeded,
)
from shared.store import Document, Store
from shared.toolspecs import retry_policy
from shared.topology import CONTROL_EXCHANGE, TASKS_EXCHANGE, quantize_delay_ms, tasks_queue

log = structlog.get_logger(__name__)
ACTIVE = [int(Status.QUEUED), int(Status.RUNNING)]

JobFinished = Callable[[Document], Awaitable[None]]


class Machine:
    def __init__(self, store: Store, publisher: Publisher, on_final: JobFinished) -> None:
        self.store = store
        self.publisher = publisher
        self.on_final = on_final

    async def _cas(
        self, condition: Document, changes: Document, stamp: tuple[str, ...] = ()
    ) -> Document | None:
        """Apply `changes` if the job matches `condition`; the job after, or None. Fields
        in `stamp` get the server's current time (with `modified`), which every
        MongoDB-protocol server stores as a date."""
        update: Document = {"$currentDate": {name: True for name in ("modified", *stamp)}}
        if changes:
            update["$set"] = changes
        result: Document | None = await self.store.jobs.find_one_and_update(
            condition, update, return_document=ReturnDocument.AFTER
        )
        return result

    async def advance(self, job: Document, interrupted: bool) -> None:
        """Do what the job needs next (see `plan.next_step`)."""
        step = next_step(job, interrupted)
        if step.action is Action.COMPLETE:
            await self._finish(job, Status.COMPLETED, {})
        elif step.task_id is None:
            return
        elif step.action in {Action.DISPATCH, Action.RESEND}:
            await self._dispatch(job, step.task_id, resend=step.action is Action.RESEND)
        elif step.action is Action.FAIL:
            cancel = {
                task_path(task["id"], "status"): int(Status.CANCELLED)
                for task in ordered_tasks(job)
                if task["id"] > step.task_id and Status(task["status"]) is Status.QUEUED
            }
            await self._finish(job, Status.FAILED, cancel)

    async def _dispatch(
        self, job: Document, task_id: int, *, resend: bool, delay: float = 0.0
    ) -> None:
        task = job["tasks"][task_key(task_id)]
        attempt = task["attempt"] if resend else task["attempt"] + 1
        if not resend:
            # `waiting_since`: from when the dispatch should be in the queue; a task not
            # started long after it is sent again (see the sweeper).
            claimed = await self._cas(
                {"_id": job["_id"], task_path(task_id, "status"): int(Status.QUEUED),
                 task_path(task_id, "dispatched"): 0,
                 task_path(task_id, "attempt"): task["attempt"]},
                {task_path(task_id, "dispatched"): 1, task_path(task_id, "attempt"): attempt,
                 "dispatch_delay": delay},
                stamp=("waiting_since",),
            )
            if claimed is None:
                return  # another delivery or replica got there first
        message = TaskDispatch(
            job_id=job["_id"], task_id=task_id, attempt=attempt, region=job["region"],
            tool=task["tool"], parameters=task["parameters"],
            workspace=workspace_prefix(job["_id"]),
        )
        if delay > 0:
            await self._publish_later(message, delay)
        else:
            await self.publisher.publish(TASKS_EXCHANGE, job["region"], message)
        log.info("task dispatched", task_id=task_id, attempt=attempt, resend=resend,
                 delay=round(delay, 2))

    async def _publish_later(self, message: TaskDispatch, delay: float) -> None:
        """Through a TTL queue that dead-letters into the region's task queue."""
        queue = tasks_queue(message.region)
        delay_queue = await self.publisher.topology.declare_delay_queue(
            self.publisher.channel, queue, quantize_delay_ms(delay)
        )
        await self.publisher.publish_raw("", delay_queue, build_message(
            message.encode(), message_id=str(message.message_id), message_type=message.type,
        ))

    async def _finish(self, job: Document, status: Status, extra: Document) -> None:
        done = await self._cas(
            {"_id": job["_id"], "status": {"$in": ACTIVE}},
            {"status": int(status), **extra}, stamp=("finished",),
        )
        if done is not None:
            log.info("job finished", status=status.text)
            await self.on_final(done)

    # Events from workers -------------------------------------------------------------

    @staticmethod
    def _attempt_condition(job_id: str, task_id: int, attempt: int) -> Document:
        """The task is still in this attempt and active: a late message of an earlier
        attempt, or one for a finished task or job, matches nothing."""
        return {
            "_id": job_id,
            task_path(task_id, "attempt"): attempt,
            task_path(task_id, "dispatched"): 1,
            task_path(task_id, "status"): {"$in": ACTIVE},
            "status": {"$in": ACTIVE},
        }

    async def _find(self, job_id: str, task_id: int) -> Document | None:
        job: Document | None = await self.store.jobs.find_one({"_id": job_id})
        if job is None or task_key(task_id) not in job["tasks"]:
            log.warning("event for an unknown job or task", task_id=task_id)
            return None
        return job

    async def on_started(self, event: TaskStarted) -> None:
        # `heartbeat`, `running_task` and `running_worker` sit at the top of the job: tasks
        # run one at a time, and the sweeper finds silent or lost ones with one indexed query.
        accepted = await self._cas(
            {**self._attempt_condition(event.job_id, event.task_id, event.attempt),
             task_path(event.task_id, "status"): int(Status.QUEUED)},
            {task_path(event.task_id, "status"): int(Status.RUNNING),
             task_path(event.task_id, "worker"): event.worker_id,
             "status": int(Status.RUNNING), "running_task": event.task_id,
             "running_worker": event.worker_id, "waiting_since": None},
            stamp=(task_path(event.task_id, "started"), "heartbeat"),
        )
        if accepted is None:
            await self._refuse_start(event)

    async def _refuse_start(self, event: TaskStarted) -> None:
        """A start that was not accepted: a second copy of an attempt that runs elsewhere, an
        attempt already given up, or a dispatch of a job stopped meanwhile. The worker running
        it stops it without a report (a start reported after its own quick end stops
        nothing)."""
        job: Document | None = await self.store.jobs.find_one({"_id": event.job_id})
        task = (job or {}).get("tasks", {}).get(task_key(event.task_id))
        if task is None:
            return
        owner = task.get("worker")
        if task.get("attempt") == event.attempt and owner == event.worker_id:
            return  # a repeated report of the accepted start
        log.warning("start refused", task_id=event.task_id, attempt=event.attempt,
                    worker=event.worker_id, accepted_worker=owner)
        await self.publisher.publish(CONTROL_EXCHANGE, "", CancelTask(
            job_id=event.job_id, task_id=event.task_id,
            attempts={event.task_id: event.attempt}, worker_id=event.worker_id))

    async def on_progress(self, event: TaskProgress) -> None:
        """Progress, and the heartbeat of a running task: one write for both."""
        await self._cas(
            self._attempt_condition(event.job_id, event.task_id, event.attempt),
            {task_path(event.task_id, "progress"): event.progress},
            stamp=("heartbeat",),
        )

    async def on_succeeded(self, event: TaskSucceeded, interrupted: bool) -> None:
        task_id = event.task_id
        job = await self._find(event.job_id, task_id)
        if job is None:
            return
        changes: Document = {
            task_path(task_id, "status"): int(Status.COMPLETED),
            task_path(task_id, "progress"): 100.0,
            task_path(task_id, "outputs"): [o.model_dump() for o in event.outputs],
            task_path(task_id, "result"): event.result,
            task_path(task_id, "metrics"): event.metrics,
            task_path(task_id, "error"): None,
        }
        stamps: tuple[str, ...] = (task_path(task_id, "finished"),)
        # The last task's success completes the job in the same write: one conditional
        # update instead of two (the others are Completed, a state nothing leaves while the
        # job is active).
        last = all(Status(t["status"]) is Status.COMPLETED
                   for t in ordered_tasks(job) if t["id"] != task_id)
        if last:
            changes["status"] = int(Status.COMPLETED)
            stamps += ("finished",)
        updated = await self._cas(
            self._attempt_condition(event.job_id, task_id, event.attempt), changes, stamps
        )
        if updated is not None and last:
            log.info("job finished", status=Status.COMPLETED.text)
            await self.on_final(updated)
            return
        await self.advance(updated or job, interrupted)

    async def send(self, job: Document, task_id: int) -> None:
        """Publish the dispatch of a task already marked dispatched in `job`."""
        await self._dispatch(job, task_id, resend=True)

    async def on_failed(self, event: TaskFailed, interrupted: bool) -> None:
        task_id = event.task_id
        job = await self._find(event.job_id, task_id)
        if job is None:
            return
        task = job["tasks"][task_key(task_id)]
        error: dict[str, Any] = {"class": event.error.error_class,
                                 "message": event.error.message, "attempt": event.attempt}
        attempts = event.attempt - task["attempt_base"]
        condition = self._attempt_condition(event.job_id, task_id, event.attempt)
        policy = retry_policy(task["tool"])
        if event.retryable and attempts < policy.max_attempts:
            retry = await self._cas(condition, {
                task_path(task_id, "status"): int(Status.QUEUED),
                task_path(task_id, "error"): error, task_path(task_id, "dispatched"): 0,
            })
            if retry is not None:
                await self._dispatch(retry, task_id, resend=False,
                                     delay=policy.delay(attempts))
            else:
                await self.advance(job, interrupted)
            return
        updated = await self._cas(
            condition,
            {task_path(task_id, "status"): int(Status.FAILED), task_path(task_id, "error"): error},
            stamp=(task_path(task_id, "finished"),),
        )
        await self.advance(updated or job, interrupted)

    async def give_up(self, job: Document, error_class: str, message: str) -> None:
        """The running task of `job` is lost with its worker: retried as a new attempt."""
        task = job["tasks"].get(task_key(job.get("running_task") or 0))
        if task is None or Status(task["status"]) is not Status.RUNNING:
            return
        log.warning("task lost; trying again", job_id=job["_id"], task_id=task["id"],
                    worker=task.get("worker"), reason=error_class)
        if task.get("worker"):  # should it be alive after all, its attempt stops
            await self.publisher.publish(CONTROL_EXCHANGE, "", CancelTask(
                job_id=job["_id"], task_id=task["id"], attempts={task["id"]: task["attempt"]},
                worker_id=task["worker"]))
        await self.on_failed(TaskFailed(
            job_id=job["_id"], task_id=task["id"], attempt=task["attempt"],
            error=TaskError(error_class=error_class, message=message), retryable=True,
        ), interrupted=False)

    async def resend(self, job: Document, task_id: int) -> bool:
        """Send a dispatch that seems lost again, under the same attempt, if it is still
        waiting as read (so two replicas never both send it); True if sent."""
        task = job["tasks"][task_key(task_id)]
        rearmed = await self._cas(
            {"_id": job["_id"], "waiting_since": job["waiting_since"],
             task_path(task_id, "status"): int(Status.QUEUED),
             task_path(task_id, "dispatched"): 1, task_path(task_id, "attempt"): task["attempt"]},
            {"dispatch_delay": 0}, stamp=("waiting_since",),
        )
        if rearmed is None:
            return False
        log.warning("dispatch not started in time; sending it again", job_id=job["_id"],
                    task_id=task_id, attempt=task["attempt"])
        await self.send(rearmed, task_id)
        return True

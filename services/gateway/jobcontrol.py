"""Running a finished job again and stopping a running one: shared by the Jobs API and the
GATE Cloud-style API, which runs each of its jobs as a job of the core under the same id.

Each change is one conditional write that also puts its `job.control` message in the job's
outbox (services/gateway/outbox.py), so a change accepted while the broker is down is still
carried out once it is back: the relay publishes what the request could not."""

from __future__ import annotations

from typing import Any

import structlog

from services.gateway import outbox
from shared.api import ApiError, not_found
from shared.broker import Publisher
from shared.jobs import Status, cancellation, new_task, ordered_tasks, task_key
from shared.messages import JobControl
from shared.store import Document, Store

log = structlog.get_logger(__name__)
STOP_ATTEMPTS = 5


async def rerun_job(
    store: Store, publisher: Publisher, job: Document, user_id: str,
    parameters: dict[int, dict[str, Any]] | None = None,
) -> Document:
    """Same id, tasks reset (with new `parameters` by task id where given), run again. The
    reset is a compare-and-set from a final status, a state the scheduler never writes again,
    so ownership of running jobs stays its own. Returns the job as reset."""
    runs = job.get("runs", 1)
    reset: Document = {"status": int(Status.QUEUED), "finished": None, "notified": None,
                       "runs": runs + 1}
    for task in ordered_tasks(job):
        fresh = new_task(task["id"], task["tool"],
                         (parameters or {}).get(task["id"]) or task["parameters"])
        # `attempt` keeps growing across runs: it fences late messages of the last run.
        fresh.update(attempt=task["attempt"], attempt_base=task["attempt"])
        reset[f"tasks.{task_key(task['id'])}"] = fresh
    order = JobControl(job_id=job["_id"], action="restart", requested_by=user_id)
    mark = outbox.control_mark(job, order)
    result = await store.jobs.update_one(
        {"_id": job["_id"], "status": job["status"], "runs": runs},
        {"$set": {**reset, **mark}, "$currentDate": {"modified": True, **outbox.MARK_STAMP}},
    )
    if result.modified_count == 0:
        raise ApiError(409, "the job changed while restarting it; try again")
    # Read before the scheduler hears of it: the answer shows the job as reset.
    reset_job = await store.jobs.find_one({"_id": job["_id"]}) or job
    await outbox.publish_or_leave(store, publisher, {"_id": job["_id"], **mark})
    return reset_job


async def cancel_job(store: Store, publisher: Publisher, query: Document) -> Document:
    """Cancel the queued or running job `query` finds: it and its unfinished tasks end
    Cancelled, and a `job.control` stop asks the scheduler to tell the worker running its
    task to stop it. The write is conditional on every task's status as read, so a task that
    ends meanwhile is never overwritten; it is tried again with what was read afresh.
    Returns the job as stopped."""
    for _ in range(STOP_ATTEMPTS):
        job = await store.jobs.find_one(query)
        if job is None:
            raise not_found(f"job {query['_id']!r}")
        if Status(job["status"]).is_final:
            raise ApiError(409, f"cannot stop a job that is {Status(job['status']).text}")
        condition, changes, attempts = cancellation(job)
        order = JobControl(job_id=job["_id"], action="stop", attempts=attempts)
        mark = outbox.control_mark(job, order)
        result = await store.jobs.update_one(condition, {
            "$set": {**changes, **mark},
            "$currentDate": {"modified": True, "finished": True, **outbox.MARK_STAMP},
        })
        if result.modified_count:
            break
    else:
        raise ApiError(409, "the job kept changing while stopping it; try again")
    stopped = await store.jobs.find_one({"_id": job["_id"]}) or job
    await outbox.publish_or_leave(store, publisher, {"_id": job["_id"], **mark})
    log.info("job stopped", job_id=job["_id"])
    return stopped

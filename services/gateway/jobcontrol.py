"""Running a finished job again and stopping a running one: shared by the Jobs API and the
GATE Cloud-style API, which runs each of its jobs as a job of the core under the same id."""

from __future__ import annotations

from typing import Any

import structlog

from shared.api import ApiError, not_found
from shared.broker import Publisher
from shared.jobs import Status, new_task, ordered_tasks, task_key, task_path
from shared.messages import CancelTask, JobControl
from shared.store import Document, Store
from shared.topology import CONTROL_EXCHANGE, JOBS_EXCHANGE

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
    result = await store.jobs.update_one(
        {"_id": job["_id"], "status": job["status"], "runs": runs},
        {"$set": reset, "$currentDate": {"modified": True}},
    )
    if result.modified_count == 0:
        raise ApiError(409, "the job changed while restarting it; try again")
    await publisher.publish(JOBS_EXCHANGE, "job.control", JobControl(
        job_id=job["_id"], action="restart", requested_by=user_id,
    ))
    return await store.jobs.find_one({"_id": job["_id"]}) or job


async def cancel_job(store: Store, publisher: Publisher, query: Document) -> Document:
    """Cancel the queued or running job `query` finds: it and its unfinished tasks end
    Cancelled, and the worker running its task is told to stop it. The update is conditional
    on every task's status as read, so a task that ends meanwhile is never overwritten; it is
    tried again with what was read afresh. Returns the job as stopped."""
    for _ in range(STOP_ATTEMPTS):
        job = await store.jobs.find_one(query)
        if job is None:
            raise not_found(f"job {query['_id']!r}")
        if Status(job["status"]).is_final:
            raise ApiError(409, f"cannot stop a job that is {Status(job['status']).text}")
        condition: Document = {"_id": job["_id"], "status": job["status"]}
        changes: Document = {"status": int(Status.CANCELLED)}
        for task in ordered_tasks(job):
            condition[task_path(task["id"], "status")] = task["status"]
            # A dispatch meanwhile would be missing from the worker's `attempts` below.
            condition[task_path(task["id"], "attempt")] = task["attempt"]
            if not Status(task["status"]).is_final:
                changes[task_path(task["id"], "status")] = int(Status.CANCELLED)
                changes[task_path(task["id"], "error")] = {
                    "class": "Cancelled", "message": "stopped on request"}
        result = await store.jobs.update_one(
            condition, {"$set": changes, "$currentDate": {"modified": True, "finished": True}}
        )
        if result.modified_count:
            break
    else:
        raise ApiError(409, "the job kept changing while stopping it; try again")
    await publisher.publish(CONTROL_EXCHANGE, "", CancelTask(
        job_id=job["_id"], attempts={task["id"]: task["attempt"] for task in ordered_tasks(job)}))
    log.info("job stopped", job_id=job["_id"])
    return await store.jobs.find_one({"_id": job["_id"]}) or job

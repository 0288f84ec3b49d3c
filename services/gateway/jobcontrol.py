"""Running a finished job again and stopping a running one: shared by the Jobs API and the
GATE Cloud-style API, which runs each of its jobs as a job of the core under the same id.

A restart is one conditional write (from a final status, which the scheduler never writes
again) that also puts its `job.control` message in the job's outbox
(services/gateway/outbox.py); a stop writes only that message: the scheduler, the owner of a
running job's state, cancels it. A change accepted while the broker is down is still carried
out once it is back: the relay publishes what the request could not."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from services.gateway import outbox
from shared.api import ApiError, not_found
from shared.broker import Publisher
from shared.jobs import Status, new_task, ordered_tasks, task_key
from shared.messages import JobControl
from shared.store import Document, Store

log = structlog.get_logger(__name__)
STOP_ATTEMPTS = 5
ACTIVE = [int(Status.QUEUED), int(Status.RUNNING)]
# How long a stop's answer waits for the scheduler to carry it out: the scheduler cancels a
# job within milliseconds while the broker is up; past this the answer is 202 Accepted.
STOP_WAIT = 5.0
STOP_POLL = 0.05


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


async def cancel_job(
    store: Store, publisher: Publisher, query: Document, user_id: str | None = None,
) -> tuple[Document, bool]:
    """Ask the scheduler to stop the queued or running job `query` finds: a `job.control`
    stop goes into the job's outbox (the gateway's only write) and out to the scheduler,
    which cancels the job and its unfinished tasks with one compare-and-set and tells the
    worker running its task to stop it. Returns the job and whether the stop was carried
    out: once published, the job is read until it is final (at most STOP_WAIT); a stop left
    in the outbox (broker down) or not carried out in time is still carried out later."""
    for _ in range(STOP_ATTEMPTS):
        job = await store.jobs.find_one(query)
        if job is None:
            raise not_found(f"job {query['_id']!r}")
        if Status(job["status"]).is_final:
            raise ApiError(409, f"cannot stop a job that is {Status(job['status']).text}")
        order = JobControl(job_id=job["_id"], action="stop", run=job.get("runs", 1),
                           requested_by=user_id)
        mark = outbox.control_mark(job, order)
        # Conditional on the outbox as read, so that two marks at once never lose one; the
        # job's state is the scheduler's, and only its being unfinished is asked here.
        result = await store.jobs.update_one(
            {"_id": job["_id"], "status": {"$in": ACTIVE}, "outbox_seq": job.get("outbox_seq")},
            {"$set": mark, "$currentDate": outbox.MARK_STAMP},
        )
        if result.modified_count:
            break
    else:
        raise ApiError(409, "the job kept changing while stopping it; try again")
    log.info("stop asked", job_id=job["_id"])
    if not await outbox.publish_or_leave(store, publisher, {"_id": job["_id"], **mark}):
        return job, False
    return await until_final(store, job)


async def until_final(store: Store, job: Document) -> tuple[Document, bool]:
    """The job once final (True), or as it is after STOP_WAIT (False). A short poll: the
    scheduler's write is the only sign, and a stop is rare enough for a read every
    STOP_POLL."""
    deadline = asyncio.get_running_loop().time() + STOP_WAIT
    while True:
        found = await store.jobs.find_one({"_id": job["_id"]})
        if found is None:
            raise not_found(f"job {job['_id']!r}")
        if Status(found["status"]).is_final:
            return found, True
        if asyncio.get_running_loop().time() >= deadline:
            return found, False
        await asyncio.sleep(STOP_POLL)

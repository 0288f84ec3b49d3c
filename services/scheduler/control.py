"""A `job.control` stop: the scheduler, the one writer of a job's state after its creation,
cancels the job and tells the workers to interrupt its running task.

The gateway records a user's stop only as a `job.control` message in the job's outbox (the
outbox mark is the gateway's alone: set by a request, cleared by its relay), and publishes
it once the broker confirms; a producer publishes the same message. Here the stop becomes
one compare-and-set on the job's and every task's status and attempt as read (retried on a
change), so a task that ends meanwhile is never overwritten, then the `control.cancel`
fanout the workers listen on. A stop of an earlier run (the job restarted since) changes
nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog

from shared.broker import Publisher
from shared.consumer import Delivery
from shared.errors import PermanentError, PublishError, Retry
from shared.jobs import Status, cancellation
from shared.messages import CancelTask, JobControl
from shared.store import Document, Store
from shared.topology import CONTROL_EXCHANGE

log = structlog.get_logger(__name__)
CANCEL_ATTEMPTS = 5
# Longer than a worker's reconnect interval (1 s) and its control queue's redeclaration.
RESEND_AFTER = 6.0
# A stop this old waited out a broker outage in the outbox: workers may still be
# reconnecting, and a worker without its control queue misses a fanout.
LATE = timedelta(seconds=5)
# How often a stop that reached no worker at all is tried again.
UNROUTABLE_TRIES = 4


class Stopper:
    def __init__(self, store: Store, publisher: Publisher) -> None:
        self.store = store
        self.publisher = publisher

    async def on_stop(self, message: JobControl, delivery: Delivery) -> None:
        job = await self.store.jobs.find_one({"_id": message.job_id})
        if job is None:
            raise PermanentError(f"job.control stop for unknown job {message.job_id}")
        attempts = await self._cancel(job, message.run)
        if attempts is None:
            log.info("stop of an earlier run; the job was restarted since",
                     job_id=message.job_id, run=message.run)
            return
        try:
            await self.publisher.publish(CONTROL_EXCHANGE, "", CancelTask(
                job_id=message.job_id, attempts=attempts))
        except PublishError:
            if delivery.attempt < UNROUTABLE_TRIES:
                raise Retry("no worker listens on the control exchange yet",
                            delay=RESEND_AFTER) from None
            log.info("stop: no worker is listening; nothing runs to interrupt",
                     job_id=message.job_id)
            return
        log.info("stop sent to the workers", job_id=message.job_id, attempt=delivery.attempt)
        if delivery.attempt == 1 and datetime.now(UTC) - message.created_at > LATE:
            # Once more, for a worker whose connection came back after this one's.
            raise Retry("sent again for workers still reconnecting", delay=RESEND_AFTER)

    async def _cancel(self, job: Document, run: int | None) -> dict[int, int] | None:
        """Cancel `job` if it is still Queued or Running in `run` (None: any): one
        conditional write, retried with the job read afresh when it changed meanwhile (a
        stop repeated, or of a job that ended, writes nothing). Returns each task's attempt,
        as the stop's fence, or None when the job is in a later run than `run`."""
        for _ in range(CANCEL_ATTEMPTS):
            if run is not None and job.get("runs", 1) != run:
                return None
            condition, changes, attempts = cancellation(job)
            if Status(job["status"]).is_final:
                return attempts
            # Fenced by the run too: a restart between the read and the write is not stopped.
            condition["runs"] = job.get("runs")  # None matches a job stored without it
            result = await self.store.jobs.update_one(condition, {
                "$set": changes, "$currentDate": {"modified": True, "finished": True}})
            if result.modified_count:
                log.info("job stopped on request", job_id=job["_id"])
                return attempts
            found = await self.store.jobs.find_one({"_id": job["_id"]})
            if found is None:
                raise PermanentError(f"job {job['_id']} disappeared while stopping it")
            job = found
        raise Retry("the job kept changing while stopping it")

"""A `job.control` stop: the scheduler tells the workers to interrupt the job's running task.

The gateway records a user's stop (the job Cancelled) and its `job.control` message in one
write, and its outbox relay publishes the message once the broker confirms; the scheduler,
the one owner of running work, turns it into the `control.cancel` fanout the workers listen
on. The job document then keeps one writer per field: the outbox mark is the gateway's
alone (set by a request, cleared by its relay), and the scheduler writes the job only when
a producer's stop reaches it for a job that is still Queued or Running."""

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
        attempts = message.attempts or await self._cancel(job)
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

    async def _cancel(self, job: Document) -> dict[int, int]:
        """A producer's stop of a job no gateway stopped: cancel it here if it is still
        Queued or Running (one conditional write, as the gateway's, retried on a change).
        Returns each task's attempt, as the stop's fence."""
        for _ in range(CANCEL_ATTEMPTS):
            condition, changes, attempts = cancellation(job)
            if Status(job["status"]).is_final:
                return attempts
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

"""A transactional outbox: what the gateway promises the scheduler is written into the job
document in the same write as the change that promises it, and published afterwards. While
the broker is down the gateway still accepts jobs, stops and restarts; this relay publishes
what is left marked once the broker is back, and clears the mark once the broker confirmed.

The mark, on the job document (written only by the gateway):
- `outbox`: 1 while something waits to be published;
- `outbox_messages`: the `job.control` messages waiting, oldest first; none means the job's
  own announcement (`job.submitted`), which is rebuilt from the job;
- `outbox_seq`: counts the marks; the clear is conditional on it, so a mark set after what
  was published is never cleared unpublished;
- `outbox_at`: when it was set; the relay leaves a younger mark to the request that set it.

The scheduler ignores an announcement of a job it knows and handles each control message
idempotently, so a message published twice (relay and request both) changes nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from aiohttp import web

from services.gateway.keys import BROKER, STORE
from shared.broker import CONNECTION_ERRORS, Publisher
from shared.errors import PublishError
from shared.jobspec import JobSpec
from shared.messages import JobControl, JobSubmitted
from shared.periodic import every
from shared.store import UNREACHABLE, Document, Store, reason_of
from shared.topology import JOBS_EXCHANGE

log = structlog.get_logger(__name__)
INTERVAL = 2.0
# A mark younger than this may still be published by the request that set it.
GRACE = timedelta(seconds=3)
BATCH = 100
REQUEST_TIMEOUT = 5.0
FAILURES: tuple[type[BaseException], ...] = (PublishError, *CONNECTION_ERRORS)


def submission_mark(now: datetime) -> Document:
    """The fields a new job is inserted with: its announcement waits in the outbox."""
    return {"outbox": 1, "outbox_seq": 0, "outbox_at": now}


def control_mark(job: Document, message: JobControl) -> Document:
    """`$set` fields that add `message` to the job's outbox (after any still waiting). The
    write sets `outbox_at` with `$currentDate` (MARK_STAMP): a date set through `$set`
    is stored as a string by nx-27017."""
    waiting = list(job.get("outbox_messages") or []) if job.get("outbox") else []
    return {"outbox": 1, "outbox_messages": [*waiting, message.model_dump(mode="json")],
            "outbox_seq": job.get("outbox_seq", 0) + 1}


MARK_STAMP = {"outbox_at": True}


def announcement(job: Document) -> JobSubmitted:
    return JobSubmitted(job_id=job["_id"], spec=JobSpec.model_validate(job["spec"]),
                        organization_id=job["organization_id"], user_id=job["user_id"])


async def publish_marked(store: Store, publisher: Publisher, job: Document) -> None:
    """Publish what `job` (as read or as written) holds in its outbox, then clear the mark
    if no newer one was set meanwhile. Raises one of FAILURES when the broker does not take
    it; the mark then stays for the relay."""
    messages: list[dict[str, Any]] = job.get("outbox_messages") or []
    for body in messages:
        await asyncio.wait_for(publisher.publish(
            JOBS_EXCHANGE, "job.control", JobControl.model_validate(body)), REQUEST_TIMEOUT)
    if not messages:
        await asyncio.wait_for(
            publisher.publish(JOBS_EXCHANGE, "job.submitted", announcement(job)),
            REQUEST_TIMEOUT,
        )
    # A job stored before `outbox_seq` existed matches None (the field is missing).
    await store.jobs.update_one(
        {"_id": job["_id"], "outbox_seq": job.get("outbox_seq")},
        {"$set": {"outbox": 0, "outbox_messages": []}},
    )


async def publish_or_leave(store: Store, publisher: Publisher, job: Document) -> bool:
    """What a request does after its write: publish now, or leave it to the relay (the
    change is accepted either way). Returns whether it went out now."""
    try:
        await publish_marked(store, publisher, job)
    except FAILURES as exc:
        log.warning("broker unavailable; the message waits in the outbox",
                    job_id=job["_id"], error=str(exc) or type(exc).__name__)
        return False
    return True


async def relay_once(store: Store, publisher: Publisher) -> int:
    """Publish what jobs left in the outbox; returns for how many jobs it went out."""
    cutoff = datetime.now(UTC) - GRACE
    marked = await store.jobs.find({"outbox": 1}).sort("created", 1).limit(BATCH).to_list()
    sent = 0
    for job in marked:
        if (job.get("outbox_at") or job["created"]) >= cutoff:
            continue
        try:
            await publish_marked(store, publisher, job)
        except FAILURES as exc:
            log.warning("outbox: broker still unavailable", error=str(exc) or type(exc).__name__)
            break
        sent += 1
    if sent:
        log.info("outbox: published what the broker missed", jobs=sent)
    return sent


async def relay(app: web.Application) -> None:
    try:
        await relay_once(app[STORE], app[BROKER].publisher)
    except UNREACHABLE as exc:  # an outage of the store, not a fault of the relay
        log.warning("outbox: store unavailable", error=reason_of(exc))


relay_ctx = every(INTERVAL, relay, "outbox relay")

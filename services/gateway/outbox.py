"""A transactional outbox for submitted jobs: the job is stored marked `outbox: 1` before it
is announced, and unmarked once the broker confirmed the announcement. While the broker is
down the gateway still accepts jobs; this relay announces every job left marked once the
broker is back. The scheduler ignores an announcement of a job it knows, so a job announced
twice (relay and request both) still runs once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import structlog
from aiohttp import web

from services.gateway.keys import BROKER, STORE
from shared.broker import CONNECTION_ERRORS, Publisher
from shared.errors import PublishError
from shared.jobspec import JobSpec
from shared.messages import JobSubmitted
from shared.periodic import every
from shared.store import Document, Store
from shared.topology import JOBS_EXCHANGE

log = structlog.get_logger(__name__)
INTERVAL = 2.0
# A job younger than this may still be announced by the request that stored it.
GRACE = timedelta(seconds=3)
BATCH = 100
REQUEST_TIMEOUT = 5.0
FAILURES: tuple[type[BaseException], ...] = (PublishError, *CONNECTION_ERRORS)


def announcement(job: Document) -> JobSubmitted:
    return JobSubmitted(job_id=job["_id"], spec=JobSpec.model_validate(job["spec"]),
                        organization_id=job["organization_id"], user_id=job["user_id"])


async def announce(store: Store, publisher: Publisher, job: Document) -> None:
    await asyncio.wait_for(
        publisher.publish(JOBS_EXCHANGE, "job.submitted", announcement(job)), REQUEST_TIMEOUT
    )
    await store.jobs.update_one({"_id": job["_id"]}, {"$set": {"outbox": 0}})


async def relay_once(store: Store, publisher: Publisher) -> int:
    """Announce jobs left in the outbox; returns how many went out."""
    cutoff = datetime.now(UTC) - GRACE
    waiting = await store.jobs.find(
        {"outbox": 1, "created": {"$lt": cutoff}}
    ).sort("created", 1).limit(BATCH).to_list()
    sent = 0
    for job in waiting:
        try:
            await announce(store, publisher, job)
        except FAILURES as exc:
            log.warning("outbox: broker still unavailable", error=str(exc) or type(exc).__name__)
            break
        sent += 1
    if sent:
        log.info("outbox: announced jobs the broker missed", count=sent)
    return sent


async def relay(app: web.Application) -> None:
    await relay_once(app[STORE], app[BROKER].publisher)


relay_ctx = every(INTERVAL, relay, "outbox relay")

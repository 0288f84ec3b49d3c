"""Housekeeping of GATE Cloud-style runs, in every gateway replica (both steps are safe to
run twice at once: settling is one conditional update, and a bundle is deleted, and its
deletion logged, by whoever deletes its record):

- Runs that ended are settled (see `records.settle`) within about a second, so their usage
  is recorded and their results become a bundle (and start to age) when they end. GETs
  never write: a job read before that shows ACTIVE, as it does while its worker still
  writes its last, and a client that saw COMPLETED finds its results bundle there.
- Results are kept for `CONVEYOR_GATE_RESULTS_DAYS` after a run (a job's
  `resultsAvailableUntil`), then deleted: the RESULT bundle's files in the platform's storage
  and the bundle; the job no longer names a `resultBundle`, and its log says why. A bundle
  that a running job reads as its input is kept until that job ends. Outputs written to a
  user's own bucket are the user's and never touched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog
from aiohttp import web

from services.gateway.gatecloud.data import active_reader, remove_bundle
from services.gateway.gatecloud.joblog import log_event
from services.gateway.gatecloud.records import STARTED, core_jobs, settle
from services.gateway.keys import BROKER, OBJECTS, SETTINGS, STORE
from shared.broker import Publisher
from shared.jobs import Status
from shared.objects import ObjectStore
from shared.periodic import every
from shared.store import Store

log = structlog.get_logger(__name__)
# Settling is what turns a read ACTIVE into COMPLETED: often, and cheap when nothing ended
# (one indexed query). Expiry works in days: once a minute is plenty.
SETTLE_INTERVAL = 1.0
EXPIRY_INTERVAL = 60.0
BATCH = 100


async def settle_ended_runs(store: Store, objects: ObjectStore) -> list[str]:
    """Settle every started job whose run has ended; the ids of those settled now. A job
    that cannot be settled now (S3 unreachable) is tried again next round, and does not
    hold up the others."""
    started = await store.gate_jobs.find(
        {"phase": STARTED, "unsettled": {"$ne": 0}}).to_list()  # also jobs from before the flag
    cores = await core_jobs(store, started)
    settled = []
    for job in started:
        core = cores.get(job["_id"])
        if core is not None and core["runs"] == job["settled_runs"]:
            if "unsettled" not in job:  # settled before the flag existed: not asked again
                await store.gate_jobs.update_one({"_id": job["_id"]}, {"$set": {"unsettled": 0}})
            continue
        if core is None or not Status(core["status"]).is_final:
            continue
        try:
            after = await settle(store, objects, job, core)
        except Exception:
            log.exception("settling a run failed; next round tries again", job_id=job["_id"])
            continue
        if after["settled_runs"] != job["settled_runs"]:
            settled.append(str(job["_id"]))
    return settled


async def expire_results(store: Store, objects: ObjectStore, publisher: Publisher,
                         kept: timedelta, now: datetime | None = None) -> list[str]:
    """Delete RESULT bundles made more than `kept` before `now`; the ids of those this call
    deleted (with several gateways, each bundle is reported and logged by one)."""
    cutoff = (now or datetime.now(UTC)) - kept
    due = await store.data_bundles.find(
        {"kind": "RESULT", "created": {"$lt": cutoff}}
    ).sort("created", 1).limit(BATCH).to_list()
    expired = []
    for bundle in due:
        try:
            if await active_reader(store, bundle) is not None:
                continue
            if not await remove_bundle(store, objects, bundle):
                continue
        except Exception:
            log.exception("deleting expired results failed; next round tries again",
                          bundle_id=bundle["_id"])
            continue
        await log_event(publisher, bundle["job_id"],
                        f"results {bundle['_id']} deleted: results are kept "
                        f"{kept.days} days (resultsAvailableUntil)")
        expired.append(str(bundle["_id"]))
    if expired:
        log.info("expired results deleted", bundles=expired)
    return expired


async def settle_step(app: web.Application) -> None:
    await settle_ended_runs(app[STORE], app[OBJECTS])


async def expiry_step(app: web.Application) -> None:
    await expire_results(app[STORE], app[OBJECTS], app[BROKER].publisher,
                         timedelta(days=app[SETTINGS].gate_results_days))


# Two loops, so that results still expire while settling fails (and the other way round).
HOUSEKEEPING = (every(SETTLE_INTERVAL, settle_step, "settling GATE runs"),
                every(EXPIRY_INTERVAL, expiry_step, "expiring GATE results"))

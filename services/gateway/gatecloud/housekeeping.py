"""Housekeeping of GATE Cloud-style runs, in every gateway replica (both steps are safe to
run twice at once):

- Runs that ended while nobody read their job are settled (see `records.settle`), so their
  usage is recorded and their results become a bundle (and start to age) when they end,
  not whenever the job is next read.
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
from services.gateway.gatecloud.records import STARTED, core_jobs, log_event, settle
from services.gateway.keys import OBJECTS, SETTINGS, STORE
from shared.jobs import Status
from shared.objects import ObjectStore
from shared.periodic import every
from shared.store import Store

log = structlog.get_logger(__name__)
INTERVAL = 60.0
BATCH = 100


async def settle_ended_runs(store: Store, objects: ObjectStore) -> list[str]:
    """Settle every started job whose run has ended; the ids of those settled now."""
    started = await store.gate_jobs.find({"phase": STARTED, "unsettled": 1}).to_list()
    cores = await core_jobs(store, started)
    settled = []
    for job in started:
        core = cores.get(job["_id"])
        if core is None or not Status(core["status"]).is_final \
                or core["runs"] == job["settled_runs"]:
            continue
        after = await settle(store, objects, job, core)
        if after["settled_runs"] != job["settled_runs"]:
            settled.append(str(job["_id"]))
    return settled


async def expire_results(store: Store, objects: ObjectStore, kept: timedelta,
                         now: datetime | None = None) -> list[str]:
    """Delete RESULT bundles made more than `kept` before `now`; their ids."""
    cutoff = (now or datetime.now(UTC)) - kept
    due = await store.data_bundles.find(
        {"kind": "RESULT", "created": {"$lt": cutoff}}
    ).sort("created", 1).limit(BATCH).to_list()
    expired = []
    for bundle in due:
        if await active_reader(store, bundle) is not None:
            continue
        await remove_bundle(store, objects, bundle)
        await log_event(store, bundle["job_id"],
                        f"results {bundle['_id']} deleted: results are kept "
                        f"{kept.days} days (resultsAvailableUntil)")
        expired.append(str(bundle["_id"]))
    if expired:
        log.info("expired results deleted", bundles=expired)
    return expired


async def housekeep(app: web.Application) -> None:
    await settle_ended_runs(app[STORE], app[OBJECTS])
    await expire_results(app[STORE], app[OBJECTS],
                         timedelta(days=app[SETTINGS].gate_results_days))


housekeeping_ctx = every(INTERVAL, housekeep, "GATE job housekeeping")

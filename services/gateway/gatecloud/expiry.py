"""Results are kept for `CONVEYOR_GATE_RESULTS_DAYS` after a run (a job's
`resultsAvailableUntil`), then deleted: the RESULT bundle's files in the platform's storage
and the bundle; the job no longer names a `resultBundle`, and its log says why. A bundle that
a running job reads as its input is kept until that job ends. Outputs written to a user's
own bucket are the user's and never touched. Every gateway replica runs the sweep; deleting
twice is harmless."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import structlog
from aiohttp import web

from services.gateway.gatecloud.data import active_reader, remove_bundle
from services.gateway.gatecloud.records import log_event
from services.gateway.keys import OBJECTS, SETTINGS, STORE
from shared.objects import ObjectStore
from shared.store import Store

log = structlog.get_logger(__name__)
INTERVAL = 3600.0
# Soon after start, so results already due go without waiting a whole interval.
FIRST_SWEEP = 60.0
BATCH = 100


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


async def results_expiry_ctx(app: web.Application) -> AsyncIterator[None]:
    """Runs the sweep for the app's lifetime."""

    async def loop() -> None:
        await asyncio.sleep(FIRST_SWEEP)
        while True:
            try:
                await expire_results(app[STORE], app[OBJECTS],
                                     timedelta(days=app[SETTINGS].gate_results_days))
            except Exception:  # the next round tries again; the sweep must not stop
                log.exception("results expiry failed")
            await asyncio.sleep(INTERVAL)

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

"""A GATE Cloud-style job: its stored configuration, its state (derived from the configuration
and from the core job that runs it), its accounting, and its shape in the API (§3).

States: RESERVED (configuration incomplete), READY (an application, an input and an output),
ACTIVE (its run is queued or running), COMPLETED (its run ended: completed, failed or
stopped), SUSPENDED (set by the system; resumable), DELETED. A run that ended is *settled*
once its worker wrote its last: its time and bytes added to the job's, its results made a
data bundle; until then the job stays ACTIVE."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from pymongo.errors import DuplicateKeyError

from services.gateway.keys import OBJECTS, SETTINGS, STORE
from services.gateway.views import base_url
from shared.api import bad_request, not_found
from shared.auth import PRINCIPAL
from shared.jobs import Status, ordered_tasks
from shared.jobview import iso
from shared.objects import ObjectStore
from shared.store import Document, Store

STATES = ("RESERVED", "READY", "ACTIVE", "COMPLETED", "DELETED", "SUSPENDED")
DEFAULT_STATES = ("RESERVED", "READY", "ACTIVE", "COMPLETED")
# Stored phases; READY/RESERVED and ACTIVE/COMPLETED are told apart when read.
CONFIGURING, STARTED, SUSPENDED, DELETED = "configuring", "started", "suspended", "deleted"
MIB = 1024 * 1024
# How long a stopped run's worker gets to write its last files and report before the run is
# settled without it (a worker that died never writes it).
SETTLE_GRACE = timedelta(seconds=30)


def new_gate_job(
    job_id: str, name: str, organization_id: str, organization: str, user_id: str,
    prices: dict[str, float],
) -> Document:
    now = datetime.now(UTC)
    return {
        "_id": job_id, "name": name, "uuid": str(uuid.uuid4()),
        "organization_id": organization_id, "organization": organization, "user_id": user_id,
        "phase": CONFIGURING, "created": now, "completed": None,
        "application": None, "output_directory": None, "inputs": [], "outputs": [],
        "next_spec": 1, "version": 0, "price": prices,
        # Starts through this API; core runs (`runs` of the core job) settled so far.
        "starts": 0, "settled_runs": 0, "used_seconds": 0.0, "used_bytes": 0,
        "result_bundle": None,
        # 1 from a start until that run is settled: what housekeeping looks for (an int, as
        # the store keeps booleans set by path as ints).
        "unsettled": 0,
    }


def files_prefix(job: Document) -> str:
    """Where the job's own files go in the platform's storage (the seed: under its uuid)."""
    return f"gate/{job['uuid']}/"


def reports_prefix(job: Document) -> str:
    return files_prefix(job) + "reports/"


def run_report_key(job: Document) -> str:
    return reports_prefix(job) + "run.json"


def default_output_prefix(job: Document, start: int) -> str:
    return files_prefix(job) + f"results/run-{start}/"


def missing_parts(job: Document) -> list[str]:
    missing = []
    if job["application"] is None:
        missing.append("an application (POST …/application)")
    if not job["inputs"]:
        missing.append("an input (POST …/input)")
    if not job["outputs"]:
        missing.append("an output (POST …/output)")
    return missing


def state_of(job: Document, core: Document | None) -> str:
    phase = job["phase"]
    if phase == DELETED:
        return "DELETED"
    if phase == SUSPENDED:
        return "SUSPENDED"
    if phase == CONFIGURING:
        return "RESERVED" if missing_parts(job) else "READY"
    if core is None:
        return "ACTIVE"  # its first run is being created
    if not Status(core["status"]).is_final:
        return "ACTIVE"
    if core["runs"] != job["settled_runs"]:
        return "ACTIVE"  # ended, but its worker is still writing its last files and report
    return "COMPLETED"


def run_seconds(core: Document, now: datetime) -> float:
    """Processing time of the core job's current run: each task from start to end."""
    total = 0.0
    for task in ordered_tasks(core):
        started = task.get("started")
        if not isinstance(started, datetime):
            continue
        ended = task.get("finished") or core.get("finished") or now
        if isinstance(ended, datetime):
            total += max(0.0, (ended - started).total_seconds())
    return total


def parse_states(request: web.Request) -> tuple[str, ...]:
    asked = [s.strip().upper() for value in request.query.getall("state", [])
             for s in value.split(",") if s.strip()]
    unknown = sorted(set(asked) - set(STATES))
    if unknown:
        raise bad_request([{"field": "state", "message": f"unknown state(s) {', '.join(unknown)};"
                            f" states are {', '.join(STATES)}"}])
    return tuple(asked) or DEFAULT_STATES


async def visible_gate_job(request: web.Request) -> Document:
    job = await request.app[STORE].gate_jobs.find_one({
        "_id": request.match_info["job_id"],
        "organization_id": {"$in": request[PRINCIPAL].organization_ids},
    })
    if job is None:
        raise not_found(f"job {request.match_info['job_id']!r}")
    return job


async def find_bundle(store: Store, given: str, organization_ids: list[str]) -> Document | None:
    """A data bundle of one of the organizations by its id, or by `D-<id>` as GATE Cloud's
    dashboard shows ids. The id as given is tried first: an id can itself start with `D-`."""
    candidates = [given, given[2:]] if given.startswith("D-") else [given]
    for candidate in candidates:
        bundle = await store.data_bundles.find_one(
            {"_id": candidate, "organization_id": {"$in": organization_ids}})
        if bundle is not None:
            return bundle
    return None


async def core_jobs(store: Store, jobs: list[Document]) -> dict[str, Document]:
    started = [job["_id"] for job in jobs if job["starts"]]
    if not started:
        return {}
    found = await store.jobs.find({"_id": {"$in": started}}).to_list()
    return {core["_id"]: core for core in found}


async def read_run_report(objects: ObjectStore, job: Document) -> dict[str, Any]:
    raw = await objects.read_bytes(run_report_key(job))
    if raw is None:
        return {}
    try:
        report = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return report if isinstance(report, dict) else {}


def worker_done(core: Document, report: dict[str, Any], now: datetime) -> bool:
    """Whether the worker of an ended run wrote its last: its report says so, its task never
    started, or the worker has not been heard of for SETTLE_GRACE (it is gone)."""
    if report.get("ended") is True:
        return True
    if not any(isinstance(task.get("started"), datetime) for task in ordered_tasks(core)):
        return True
    finished = core.get("finished")
    return not isinstance(finished, datetime) or now - finished > SETTLE_GRACE


async def settle(store: Store, objects: ObjectStore, job: Document,
                 core: Document | None) -> Document:
    """A started job whose core run ended, settled (once, by housekeeping or by the first
    change made to the job, and once its worker has written its last): the run's time and
    bytes added, its results in the default location made a data bundle. Never on a GET: a
    read shows the job ACTIVE until then."""
    if (job["phase"] != STARTED or core is None or not Status(core["status"]).is_final
            or core["runs"] == job["settled_runs"]):
        return job
    report = await read_run_report(objects, job)
    now = datetime.now(UTC)
    if not worker_done(core, report, now):
        return job
    seconds = run_seconds(core, now)
    read = int(report.get("bytesRead", 0) or 0)
    bundle_id = None
    if job["output_directory"] is None:
        bundle_id = f"{job['_id']}.{job['starts']}"
    claimed = await store.gate_jobs.update_one(
        {"_id": job["_id"], "settled_runs": job["settled_runs"], "phase": STARTED},
        {"$set": {"settled_runs": core["runs"], "result_bundle": bundle_id, "unsettled": 0},
         "$inc": {"used_seconds": seconds, "used_bytes": read},
         "$currentDate": {"completed": True}},
    )
    if claimed.modified_count and bundle_id is not None:
        try:
            await store.data_bundles.insert_one({
                "_id": bundle_id, "name": f"Results of {job['name']} (run {job['starts']})",
                "organization_id": job["organization_id"], "kind": "RESULT",
                "prefix": default_output_prefix(job, job["starts"]), "fileName": None,
                "job_id": job["_id"], "created": datetime.now(UTC),
            })
        except DuplicateKeyError:
            pass
    return await store.gate_jobs.find_one({"_id": job["_id"]}) or job


async def core_of(request: web.Request, job: Document) -> Document | None:
    """The core job of the job's runs (None before any), for a read: nothing is written."""
    return (await core_jobs(request.app[STORE], [job])).get(job["_id"])


async def current(request: web.Request, job: Document) -> tuple[Document, Document | None]:
    """For a change to the job: the job settled if its run ended (so the change meets its
    true state), and the core job of its runs (None before any)."""
    core = await core_of(request, job)
    return await settle(request.app[STORE], request.app[OBJECTS], job, core), core


def job_url(request: web.Request, job_id: str) -> str:
    return f"{base_url(request)}/api/job/{job_id}"


def bundle_url(request: web.Request, bundle_id: str) -> str:
    return f"{base_url(request)}/api/data/{bundle_id}"


def usage(job: Document, core: Document | None, state: str,
          report: dict[str, Any]) -> tuple[float, int]:
    """Time and bytes used so far: the settled runs', and an ACTIVE run's up to now (its
    bytes as its latest report says)."""
    seconds, read = float(job["used_seconds"]), int(job["used_bytes"])
    if state == "ACTIVE" and core is not None:
        seconds += run_seconds(core, datetime.now(UTC))
        read += int(report.get("bytesRead", 0) or 0)
    return seconds, read


def job_details(request: web.Request, job: Document, core: Document | None,
                report: dict[str, Any]) -> dict[str, Any]:
    """§3.1's keys: dates and results only once COMPLETED, usage once started (`report`:
    the current run's, for an ACTIVE job's bytes so far)."""
    state = state_of(job, core)
    details: dict[str, Any] = {
        "id": job["_id"], "url": job_url(request, job["_id"]), "name": job["name"],
        "uuid": job["uuid"], "state": state, "price": dict(job["price"]),
        "dateCreated": iso(job["created"]),
    }
    if state == "COMPLETED" and job.get("completed"):
        # When the run ended (the core job's own stamp), not when it was first read.
        ended = core.get("finished") if core is not None else None
        completed: datetime = ended if isinstance(ended, datetime) else job["completed"]
        kept = timedelta(days=request.app[SETTINGS].gate_results_days)
        details["dateCompleted"] = iso(completed)
        details["resultsAvailableUntil"] = iso(completed + kept)
        if job["result_bundle"]:
            details["resultBundle"] = bundle_url(request, job["result_bundle"])
    if job["starts"]:
        seconds, read = usage(job, core, state, report)
        details.update(timeUsed=round(seconds, 3), timeCharged=charged_seconds(seconds),
                       bytesUsed=read, bytesCharged=charged_bytes(read))
    return details


def charged_seconds(seconds: float) -> int:
    """Time is charged by the started second."""
    return math.ceil(seconds)


def charged_bytes(read: int) -> int:
    """Data is charged by the started MiB."""
    return math.ceil(read / MIB) * MIB


def xml_details(details: dict[str, Any]) -> dict[str, Any]:
    """§3.1's XML: the price as attributes (`<price setup="0" hour="0.8" mib="0"/>`)."""
    return {**details, "price": {f"@{key}": value for key, value in details["price"].items()}}

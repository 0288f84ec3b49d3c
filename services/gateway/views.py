"""The Jobs API of the seed: submit, read, list, restart and resubmit."""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web
from pymongo import DESCENDING

from services.gateway import idempotency, outbox
from services.gateway.jobcontrol import cancel_job, rerun_job
from services.gateway.keys import BROKER, OBJECTS, SETTINGS, STORE
from services.gateway.submission import build_job, checked_spec, read_json
from shared.api import ApiError, bad_request, int_query, not_found
from shared.auth import PRINCIPAL, Principal
from shared.jobmetrics import job_metrics
from shared.jobs import FINAL, Status, ordered_tasks, parse_status
from shared.jobspec import JobSpec
from shared.jobview import render_job
from shared.store import Document
from shared.toolspecs import internal_to

log = structlog.get_logger(__name__)
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


def base_url(request: web.Request) -> str:
    """Where clients reach the API: the configured public URL, else what the request (or a
    proxy in front, by X-Forwarded-*) says."""
    configured = request.app[SETTINGS].public_url
    if configured:
        return configured.rstrip("/")
    host = request.headers.get("X-Forwarded-Host", request.host)
    scheme = request.headers.get("X-Forwarded-Proto", request.scheme)
    return f"{scheme}://{host}"


async def job_json(request: web.Request, job: Document) -> dict[str, Any]:
    return await render_job(job, base_url(request), request.app[OBJECTS])


async def visible_job(request: web.Request) -> Document:
    """The job named in the path if the caller's organizations may see it, else 404."""
    principal = request[PRINCIPAL]
    job = await request.app[STORE].jobs.find_one({
        "_id": request.match_info["job_id"],
        "organization_id": {"$in": principal.organization_ids},
    })
    if job is None:
        raise not_found(f"job {request.match_info['job_id']!r}")
    return job


async def store_and_publish(request: web.Request, job: Document) -> None:
    """Store the job in the outbox, then announce it. If the broker does not take the
    announcement now, the job stays accepted and the outbox relay announces it later."""
    store = request.app[STORE]
    marked = {**job, **outbox.submission_mark(job["created"])}
    await store.jobs.insert_one(marked)
    structlog.contextvars.bind_contextvars(job_id=job["_id"])
    if await outbox.publish_or_leave(store, request.app[BROKER].publisher, marked):
        log.info("job submitted", tasks=len(job["tasks"]), region=job["region"])


async def create_job(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    store = request.app[STORE]
    payload = await read_json(request)
    spec = await checked_spec(payload, settings)
    claim = idempotency.claim_for(request, request[PRINCIPAL].user_id, payload)
    if claim is not None and (earlier := await idempotency.earlier_job(store, claim)):
        return await replayed(request, earlier)
    job = await build_job(store, settings, request[PRINCIPAL], spec)
    if claim is not None and (earlier := await idempotency.record(store, claim, job["_id"])):
        return await replayed(request, earlier)
    await store_and_publish(request, job)
    return web.json_response(await job_json(request, job), status=201,
                             headers={"Location": f"/api/jobs/{job['_id']}/"})


async def replayed(request: web.Request, job: Document) -> web.Response:
    """The answer to a repeated request: the job it created, and nothing new started."""
    return web.json_response(await job_json(request, job), status=200,
                             headers={"Idempotent-Replayed": "true",
                                      "Location": f"/api/jobs/{job['_id']}/"})


async def get_job(request: web.Request) -> web.Response:
    return web.json_response(await job_json(request, await visible_job(request)))


def list_filter(request: web.Request, principal: Principal) -> Document:
    query: Document = {"organization_id": {"$in": principal.organization_ids}}
    if "status" in request.query:
        try:
            query["status"] = int(parse_status(request.query["status"]))
        except ValueError as exc:
            raise bad_request([{"field": "status", "message": str(exc)}]) from None
    if "tag" in request.query:
        # `$all` rather than plain equality: the same match on MongoDB, and nx-27017
        # misses plain array equality when the field is indexed.
        query["tags"] = {"$all": [request.query["tag"]]}
    if "job_bundle_id" in request.query:
        query["job_bundle_id"] = request.query["job_bundle_id"]
    return query


async def list_jobs(request: web.Request) -> web.Response:
    """The caller's jobs, newest first: `{"count", "next", "previous", "results"}`."""
    page = int_query(request, "page", 1, 1, 1_000_000)
    size = int_query(request, "page_size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    query = list_filter(request, request[PRINCIPAL])
    jobs = request.app[STORE].jobs
    count = await jobs.count_documents(query)
    cursor = jobs.find(query).sort([("created", DESCENDING), ("_id", DESCENDING)])
    found = await cursor.skip((page - 1) * size).limit(size).to_list()
    results = [await job_json(request, job) for job in found]

    def page_url(number: int) -> str:
        return base_url(request) + str(request.rel_url.update_query(page=number, page_size=size))

    return web.json_response({
        "count": count,
        "next": page_url(page + 1) if page * size < count else None,
        "previous": page_url(page - 1) if page > 1 else None,
        "results": results,
    })


def _finished_or_conflict(job: Document, action: str) -> None:
    for task in ordered_tasks(job):
        # Its runs belong to the facade that scheduled it, which keeps their accounting and
        # results.
        facade = internal_to(task["tool"])
        if facade is not None:
            raise ApiError(409, f"job {job['_id']} runs through {facade.name}; {action} it "
                                f"there: POST {facade.control_path(job['_id'])}")
    status = Status(job["status"])
    if status not in FINAL:
        raise ApiError(409, f"cannot {action} a job that is {status.text}; "
                       "only Completed, Failed or Cancelled jobs can")


async def restart_job(request: web.Request) -> web.Response:
    job = await visible_job(request)
    _finished_or_conflict(job, "restart")
    restarted = await rerun_job(request.app[STORE], request.app[BROKER].publisher, job,
                                request[PRINCIPAL].user_id)
    return web.json_response(await job_json(request, restarted))


async def resubmit_job(request: web.Request) -> web.Response:
    """A new job with the same specification, under a new id."""
    job = await visible_job(request)
    _finished_or_conflict(job, "resubmit")
    spec = JobSpec.model_validate(job["spec"]).model_copy(
        update={"organization_id": job["organization_id"], "organization": None}
    )
    fresh = await build_job(request.app[STORE], request.app[SETTINGS], request[PRINCIPAL], spec)
    copy = {**fresh, "region": job["region"], "job_bundle_id": job.get("job_bundle_id"),
            "job_bundle": job.get("job_bundle")}
    await store_and_publish(request, copy)
    return web.json_response(await job_json(request, copy), status=201,
                             headers={"Location": f"/api/jobs/{copy['_id']}/"})


async def stop_job(request: web.Request) -> web.Response:
    """Cancel a queued or running job: it and its unfinished tasks end Cancelled. 200 with
    the job once the scheduler stopped it; 202 Accepted with the job as it is when the stop
    waits for the broker (it is carried out once the broker is back)."""
    job, carried_out = await cancel_job(request.app[STORE], request.app[BROKER].publisher, {
        "_id": request.match_info["job_id"],
        "organization_id": {"$in": request[PRINCIPAL].organization_ids},
    }, request[PRINCIPAL].user_id)
    return web.json_response(await job_json(request, job), status=200 if carried_out else 202)


async def job_metrics_view(request: web.Request) -> web.Response:
    """The seed's metrics of a job, once it Completed or Failed (409 before)."""
    job = await visible_job(request)
    status = Status(job["status"])
    if status not in {Status.COMPLETED, Status.FAILED}:
        raise ApiError(409, f"metrics are ready once the job Completed or Failed; it is "
                            f"{status.text}")
    return web.json_response(job_metrics(job))

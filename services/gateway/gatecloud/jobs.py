"""§2–5 of the seed: list and create jobs, their details and name, the application to run and
where results go. Every answer is JSON, or XML when the client asks for it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from services.gateway.bundles import membership_for
from services.gateway.gatecloud.bodies import (
    ApplicationChange,
    JobChanges,
    NewJob,
    OutputDirectoryChange,
    read_body,
)
from services.gateway.gatecloud.joblog import log_event
from services.gateway.gatecloud.records import (
    DELETED,
    core_jobs,
    core_of,
    current,
    files_prefix,
    job_details,
    job_url,
    new_gate_job,
    parse_states,
    read_run_report,
    reports_prefix,
    state_of,
    visible_gate_job,
    xml_details,
)
from services.gateway.keys import BROKER, OBJECTS, SETTINGS, STORE
from shared.api import ApiError
from shared.auth import PRINCIPAL
from shared.jobs import new_job_id
from shared.params import split_s3_url
from shared.retry import RetryPolicy, retrying
from shared.secrets import sealer_for
from shared.store import Document
from shared.xmlforms import respond

T = TypeVar("T")
# Tries of a change that meets another request's change to the same job, each after a wait
# of up to 5 ms, 10 ms, … (fully random, so that the racing requests part at once).
EDIT_RETRY = RetryPolicy(max_attempts=8, base_delay=0.005, max_delay=0.32, jitter=1.0)


async def list_jobs(request: web.Request) -> web.Response:
    """§2: the caller's jobs in the asked states (default RESERVED, READY, ACTIVE,
    COMPLETED), oldest first."""
    states = parse_states(request)
    store = request.app[STORE]
    jobs = await store.gate_jobs.find(
        {"organization_id": {"$in": request[PRINCIPAL].organization_ids}}
    ).sort([("created", 1), ("_id", 1)]).to_list()
    cores = await core_jobs(store, jobs)
    listed = []
    for job in jobs:
        state = state_of(job, cores.get(job["_id"]))
        if state in states:
            listed.append({"url": job_url(request, job["_id"]), "state": state,
                           "id": job["_id"], "name": job["name"]})
    return respond(request, listed, "jobs")


async def answer_job(request: web.Request, job: Document, status: int = 200,
                     headers: dict[str, str] | None = None) -> web.Response:
    """The job as stored (a GET writes nothing; housekeeping settles an ended run)."""
    core = await core_of(request, job)
    report = (await read_run_report(request.app[OBJECTS], job)
              if state_of(job, core) == "ACTIVE" else {})
    details = job_details(request, job, core, report)
    return respond(request, details, "job", status=status, headers=headers,
                   xml=xml_details(details))


async def create_job(request: web.Request) -> web.Response:
    """A new job, RESERVED until it has an application, an input and an output."""
    body = await read_body(request, "job", NewJob)
    principal = request[PRINCIPAL]
    member = membership_for(principal, body.organization, "organization")
    settings = request.app[SETTINGS]
    job = new_gate_job(new_job_id(), body.name, member.organization_id, member.organization,
                       principal.user_id, {"setup": settings.gate_price_setup,
                                           "hour": settings.gate_price_hour,
                                           "mib": settings.gate_price_mib})
    await request.app[STORE].gate_jobs.insert_one(job)
    await log_event(request.app[BROKER].publisher, job["_id"], f"job {body.name!r} created")
    return await answer_job(request, job, status=201,
                            headers={"Location": job_url(request, job["_id"])})


async def get_job(request: web.Request) -> web.Response:
    return await answer_job(request, await visible_gate_job(request))


async def editable(request: web.Request) -> Document:
    """The job, if its configuration may change now: not while a run is ACTIVE. (Handlers
    find the job before reading the body: a job of another organization is a 404 whatever
    the body says.)"""
    job, core = await current(request, await visible_gate_job(request))
    state = state_of(job, core)
    if state in {"ACTIVE", "DELETED"}:
        raise ApiError(409, f"the job is {state}; its configuration can change in states "
                            "RESERVED, READY, COMPLETED and SUSPENDED"
                            + (" (stop it first)" if state == "ACTIVE" else ""))
    return job


class JobChanged(ApiError):
    """Someone changed the job between reading and changing it."""

    def __init__(self) -> None:
        super().__init__(409, "the job kept changing while changing it; try again")


async def change(request: web.Request, job: Document, fields: Document) -> Document:
    """Set `fields` if nobody changed the job since it was read (else JobChanged). Their
    secrets (a password, a secretKey, an indexUrl's password) are stored sealed; the
    worker that runs the job opens them."""
    store = request.app[STORE]
    result = await store.gate_jobs.update_one(
        {"_id": job["_id"], "version": job["version"]},
        {"$set": sealer_for(request.app[SETTINGS]).seal(fields), "$inc": {"version": 1}},
    )
    if result.modified_count == 0:
        raise JobChanged
    return await store.gate_jobs.find_one({"_id": job["_id"]}) or job


async def edit(request: web.Request, apply: Callable[[Document], Awaitable[T]],
               load: Callable[[web.Request], Awaitable[Document]] = editable) -> T:
    """`apply` (which decides from the job and calls `change`) on the job as `load` reads
    it, again on a fresh read when another request changed the job meanwhile: concurrent
    changes (two inputs added at once) all succeed, each checked against the other's."""
    async def attempt(_: int) -> T:
        return await apply(await load(request))

    return await retrying(attempt, EDIT_RETRY, (JobChanged,))  # the last JobChanged: a 409


async def rename_job(request: web.Request) -> web.Response:
    """§3.2: the name is the only detail that changes (in any state but DELETED)."""
    await visible_gate_job(request)
    body = await read_body(request, "job", JobChanges)

    async def rename(job: Document) -> Document:
        if job["phase"] == DELETED:
            raise ApiError(409, "the job is DELETED")
        return await change(request, job, {"name": body.name})

    return await answer_job(request, await edit(request, rename, visible_gate_job))


async def delete_job(request: web.Request) -> web.Response:
    """Not in the seed, but its DELETED state needs a way in: the job leaves the default
    listing, its own files go; result bundles stay (they are the user's data)."""
    job = await edit(request, lambda job: change(request, job, {"phase": DELETED}))
    await request.app[OBJECTS].delete_prefix(reports_prefix(job))
    await log_event(request.app[BROKER].publisher, job["_id"], "job deleted")
    return web.Response(status=204)


def platform_location(request: web.Request, key: str) -> str:
    return f"s3://{request.app[OBJECTS].bucket}/{key}"


async def application_view(request: web.Request, job: Document) -> dict[str, Any]:
    """§4.1: where the application is; a fresh upload URL each time for an uploaded one."""
    application = job["application"]
    if application is None:
        return {}
    if application["kind"] == "upload":
        objects = request.app[OBJECTS]
        key = application["key"]
        return {"location": platform_location(request, key), "fileName": application["fileName"],
                "putUrl": await objects.presigned_put_url(key),
                "uploaded": await objects.exists(key)}
    return own_bucket_view(application, "location")


def own_bucket_view(place: Document, location_key: str) -> dict[str, Any]:
    """A location in the user's bucket as shown: never the secret key."""
    shown = {location_key: place["location"]}
    if place.get("accessKey"):  # anonymous access has none to show
        shown["accessKey"] = place["accessKey"]
    if place.get("endpoint"):
        shown["endpoint"] = place["endpoint"]
    return shown


async def get_application(request: web.Request) -> web.Response:
    job = await visible_gate_job(request)
    return respond(request, await application_view(request, job), "application")


async def set_application(request: web.Request) -> web.Response:
    """§4.2: upload here (`fileName`: answers a `putUrl`) or use one in your own bucket."""
    job = await editable(request)
    body = await read_body(request, "application", ApplicationChange)
    application: Document
    if body.fileName is not None:
        application = {"kind": "upload", "fileName": body.fileName,
                       "key": files_prefix(job) + f"application/{body.fileName}"}
    else:
        assert body.s3Location is not None
        application = {"kind": "s3", **body.stored(body.s3Location)}
    job = await edit(request, lambda job: change(request, job, {"application": application}))
    return respond(request, await application_view(request, job), "application")


def output_directory_view(job: Document) -> dict[str, Any]:
    directory = job["output_directory"]
    if directory is None:
        return {"defaultLocation": True}
    return own_bucket_view(directory, "s3Location")


async def get_output_directory(request: web.Request) -> web.Response:
    job = await visible_gate_job(request)
    return respond(request, output_directory_view(job), "outputDirectory")


async def set_output_directory(request: web.Request) -> web.Response:
    """§5.2: the default location, or `s3Location` (with keys) in your own bucket."""
    job = await editable(request)
    body = await read_body(request, "outputDirectory", OutputDirectoryChange)
    directory = None
    if body.s3Location is not None:
        bucket, prefix = split_s3_url(body.s3Location)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        directory = body.stored(f"s3://{bucket}/{prefix}")
    job = await edit(request, lambda job: change(request, job, {"output_directory": directory}))
    return respond(request, output_directory_view(job), "outputDirectory")

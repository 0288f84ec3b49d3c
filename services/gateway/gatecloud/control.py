"""§8 and §10 of the seed: starting, stopping, resuming and resetting a job, and its reports.

A start runs the job as a job of the core under the same id with one `gate:annotate` task
(a later start runs that core job again, with the configuration as it is then); a stop
cancels that run, keeping what it wrote; a reset deletes the supplementary files (reports)
and makes the job configurable again; its result bundles stay."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from services.gateway.gatecloud.bodies import Control, read_body, split_list
from services.gateway.gatecloud.joblog import log_event
from services.gateway.gatecloud.jobs import change
from services.gateway.gatecloud.records import (
    CONFIGURING,
    STARTED,
    core_of,
    current,
    default_output_prefix,
    job_url,
    missing_parts,
    read_run_report,
    reports_prefix,
    run_report_key,
    state_of,
    usage,
    visible_gate_job,
)
from services.gateway.jobcontrol import cancel_job, rerun_job
from services.gateway.keys import BROKER, OBJECTS, SETTINGS, STORE
from services.gateway.views import store_and_publish
from shared.api import ApiError
from shared.auth import PRINCIPAL
from shared.gate import GateAnnotate
from shared.jobs import Status, new_job_document
from shared.jobspec import JobSpec, TaskSpec
from shared.secrets import sealer_for
from shared.store import Document
from shared.toolspecs import field_errors
from shared.xmlforms import respond

VALID_STATES = {"start": ("READY",), "resume": ("SUSPENDED",), "stop": ("ACTIVE",),
                "reset": ("COMPLETED",)}
GATE_TAG = "gate"
MAX_LISTED_FAILURES = 1000


def credentials(place: Document) -> dict[str, Any] | None:
    """The own bucket's keys as the worker's tool takes them (none: anonymous access)."""
    found = {"access_key": place.get("accessKey"), "secret_key": place.get("secretKey"),
             "endpoint": place.get("endpoint")}
    found = {key: value for key, value in found.items() if value}
    return found or None


async def task_parameters(request: web.Request, job: Document, start: int) -> dict[str, Any]:
    """`gate:annotate`'s parameters for the job as configured now."""
    bucket = request.app[OBJECTS].bucket
    application = job["application"]
    if application["kind"] == "upload":
        app_location: Document = {"url": f"s3://{bucket}/{application['key']}"}
    else:
        app_location = {"url": application["location"], "own": True,
                        "credentials": credentials(application)}
    bundles = {bundle["_id"]: bundle async for bundle in request.app[STORE].data_bundles.find(
        {"_id": {"$in": [spec["sourceBundle"] for spec in job["inputs"]]}})}
    inputs = []
    for spec in job["inputs"]:
        bundle = bundles.get(spec["sourceBundle"])
        if bundle is None:
            raise ApiError(409, f"input {spec['id']}: data bundle {spec['sourceBundle']!r} "
                                "was deleted; delete or change the input")
        source = bundle["prefix"] + (bundle["fileName"] or "")
        inputs.append({
            "id": spec["id"], "source": f"s3://{bucket}/{source}",
            "type": spec["type"], "encoding": spec.get("encoding"),
            "mime_type_override": spec.get("mimeTypeOverride"),
            "file_extensions": split_list(spec.get("fileExtensions")),
            "mime_types": split_list(spec.get("mimeTypes")),
        })
    outputs = [{
        "id": spec["id"], "type": spec["type"], "file_extension": spec.get("fileExtension"),
        "annotation_selectors": split_list(spec.get("annotationSelectors")),
        "index_url": spec.get("indexUrl"), "username": spec.get("username"),
        "password": spec.get("password"),
    } for spec in job["outputs"]]
    directory = job["output_directory"]
    output: Document = ({"url": f"s3://{bucket}/{default_output_prefix(job, start)}"}
                        if directory is None else
                        {"url": directory["location"], "own": True,
                         "credentials": credentials(directory)})
    parameters = {"application": app_location, "inputs": inputs, "outputs": outputs,
                  "output": output, "report": f"s3://{bucket}/{run_report_key(job)}"}
    try:
        GateAnnotate.model_validate(parameters)
    except ValidationError as exc:
        # Field paths and reasons only: the values may hold the user's secrets.
        raise ApiError(409, "cannot start: the job's configuration is not one a run takes",
                       field_errors(exc, "")) from None
    return parameters


async def uploads_missing(request: web.Request, job: Document,
                          parameters: dict[str, Any]) -> list[str]:
    """What was announced but never uploaded: the application, an input's archive."""
    objects = request.app[OBJECTS]
    missing = []
    if job["application"]["kind"] == "upload":
        if not await objects.exists(job["application"]["key"]):
            missing.append("the application's file (PUT it to the putUrl of …/application)")
    for spec in parameters["inputs"]:
        key = spec["source"].split("/", 3)[3]
        if spec["type"] != "RESULTS" and not await objects.exists(key):
            missing.append(f"the archive of input {spec['id']} (PUT it to its bundle's putUrl)")
    return missing


async def launch(request: web.Request, job: Document, core: Document | None) -> None:
    """Run the job: its first run creates the core job, later ones run it again."""
    start = job["starts"] + 1
    parameters = await task_parameters(request, job, start)
    if missing := await uploads_missing(request, job, parameters):
        raise ApiError(409, "cannot start: missing " + "; ".join(missing),
                       details={"missing": missing})
    before = {"phase": job["phase"], "starts": job["starts"],
              "unsettled": job.get("unsettled", 0)}
    job = await change(request, job, {"phase": STARTED, "starts": start, "unsettled": 1})
    store, principal = request.app[STORE], request[PRINCIPAL]
    try:
        await request.app[OBJECTS].delete_prefix(reports_prefix(job))
        if core is None:
            spec = JobSpec(tasks=[TaskSpec(tool="gate:annotate", parameters=parameters)],
                           tags=[GATE_TAG])
            document = new_job_document(
                job["_id"], spec, region=request.app[SETTINGS].default_region,
                organization_id=job["organization_id"], organization=job["organization"],
                user_id=principal.user_id, user=principal.user, job_bundle_id=None,
                job_bundle=None, now=datetime.now(UTC),
                sealer=sealer_for(request.app[SETTINGS]),
            )
            await store_and_publish(request, document)
        else:
            await rerun_job(store, request.app[BROKER].publisher, core, principal.user_id,
                            {1: parameters})
    except BaseException:
        # No run was made: the job is as it was before this start. Conditional on this
        # start, not on the version: an edit meanwhile must not keep the job half-started.
        await store.gate_jobs.update_one({"_id": job["_id"], "starts": start},
                                         {"$set": before, "$inc": {"version": 1}})
        raise
    await log_event(request.app[BROKER].publisher, job["_id"], f"run {start} started")


async def control(request: web.Request) -> web.Response:
    job, core = await current(request, await visible_gate_job(request))
    body = await read_body(request, "control", Control)
    state = state_of(job, core)
    valid = VALID_STATES[body.action]
    if state not in valid:
        details: dict[str, object] = {"state": state, "validStates": list(valid)}
        message = f"cannot {body.action} a job that is {state}; valid in: {', '.join(valid)}"
        if body.action == "start" and state == "RESERVED":
            details["missing"] = missing_parts(job)
            message += "; it still needs " + ", ".join(missing_parts(job))
        raise ApiError(409, message, details=details)
    store = request.app[STORE]
    if body.action in {"start", "resume"}:
        await launch(request, job, core)
    elif body.action == "stop":
        # A run that has ended already is being settled: stopping it again changes nothing.
        if core is not None and not Status(core["status"]).is_final:
            await cancel_job(store, request.app[BROKER].publisher, {"_id": job["_id"]},
                             request[PRINCIPAL].user_id)
            await log_event(request.app[BROKER].publisher, job["_id"],
                            "stopped on request; results written so far kept")
    else:
        await change(request, job, {"phase": CONFIGURING})
        await request.app[OBJECTS].delete_prefix(reports_prefix(job))
        await log_event(request.app[BROKER].publisher, job["_id"],
                        "reset: reports deleted, result bundles kept")
    return web.Response(status=204)


def report_url(request: web.Request, job_id: str) -> str:
    return f"{job_url(request, job_id)}/reports/summary"


async def list_reports(request: web.Request) -> web.Response:
    """§10: the supplementary files of the current run (none before a start or after a
    reset)."""
    job = await visible_gate_job(request)
    listed = [report_url(request, job["_id"])] if job["phase"] == STARTED else []
    return respond(request, listed, "reports")


async def summary_report(request: web.Request) -> web.Response:
    """The run's summary: documents processed, failed and why, annotations, time, bytes."""
    job = await visible_gate_job(request)
    core = await core_of(request, job)
    if job["phase"] != STARTED:
        raise ApiError(404, "no report: the job has not run since it was created or reset")
    state = state_of(job, core)
    report = await read_run_report(request.app[OBJECTS], job)
    seconds, read = usage(job, core, state, report)
    failures = report.get("failures", [])[:MAX_LISTED_FAILURES]
    summary = {
        "job": job_url(request, job["_id"]), "name": job["name"], "state": state,
        "run": job["starts"],
        "runStatus": Status(core["status"]).text if core is not None else None,
        "documentsProcessed": report.get("documentsProcessed", 0),
        "documentsFailed": report.get("documentsFailed", 0),
        "annotations": report.get("annotationsWritten", 0),
        "filesWritten": report.get("filesWritten", 0),
        "documentsIndexed": report.get("documentsIndexed", 0),
        "bytesRead": report.get("bytesRead", 0),
        "runSeconds": report.get("seconds"),
        "error": report.get("error"),
        "timeUsed": round(seconds, 3), "bytesUsed": read,
        "failures": failures,
    }
    return respond(request, summary, "report")

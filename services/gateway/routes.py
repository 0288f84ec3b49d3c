"""Every API route in one table: registered from it, and documented from it (OpenAPI)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from services.gateway import bundles, forwarding, me, views
from services.gateway.gatecloud import control, data, jobs, specs
from shared.routing import add_twins

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    request_schema: str | None = None
    responses: dict[int, str] = field(default_factory=dict)
    query: tuple[tuple[str, str], ...] = ()
    # The OpenAPI operationId: unique, and kept when the handler is renamed (clients
    # generated from the document name their methods after it).
    operation_id: str = field(kw_only=True)


JOB = "Job"
# The seed's own paths of job bundles (`/job_bundle/`) beside ours under `/api/`.
SEED_PATH = {"/api": "", "": "_seed_path"}
ROUTES: list[Route] = [
    Route("POST", "/api/jobs/", views.create_job, "Submit a job",
          request_schema="JobSpec",
          responses={201: JOB, 400: "Error", 401: "Error", 403: "Error", 413: "Error",
                     503: "Error"}, operation_id="jobs_create"),
    Route("GET", "/api/jobs/", views.list_jobs, "List the caller's jobs, newest first",
          responses={200: "JobPage", 400: "Error", 401: "Error"},
          query=(("page", "integer"), ("page_size", "integer"), ("status", "string"),
                 ("tag", "string"), ("job_bundle_id", "string")), operation_id="jobs_list"),
    Route("GET", "/api/jobs/{job_id}/", views.get_job, "Get a job",
          responses={200: JOB, 401: "Error", 404: "Error"}, operation_id="jobs_get"),
    Route("POST", "/api/jobs/{job_id}/restart/", views.restart_job,
          "Reset the tasks of a finished job and run it again under the same id",
          responses={200: JOB, 401: "Error", 404: "Error", 409: "Error"},
          operation_id="jobs_restart"),
    Route("GET", "/api/jobs/{job_id}/metrics/", views.job_metrics_view,
          "A finished job's metrics: cus, video_minutes_in/out, gb_in/out",
          responses={200: "JobMetrics", 401: "Error", 404: "Error", 409: "Error"},
          operation_id="jobs_metrics"),
    Route("POST", "/api/jobs/{job_id}/stop/", views.stop_job,
          "Stop a queued or running job: it and its unfinished tasks end Cancelled (200, the "
          "job stopped; 202, the job as it is while the stop waits for the broker)",
          responses={200: JOB, 202: JOB, 401: "Error", 404: "Error", 409: "Error"},
          operation_id="jobs_stop"),
    Route("POST", "/api/jobs/{job_id}/resubmit/", views.resubmit_job,
          "Run a finished job's specification again as a new job",
          responses={201: JOB, 401: "Error", 404: "Error", 409: "Error"},
          operation_id="jobs_resubmit"),
    Route("GET", "/api/jobs/{job_id}/tasks/{task_id}/logs/", forwarding.to_logger,
          "A task's log, oldest first (20 calls a minute, 1000 a day per key, with the job log)",
          responses={200: "TaskLogs", 400: "Error", 401: "Error", 404: "Error", 429: "Error"},
          query=(("limit", "integer"), ("cursor", "string")), operation_id="jobs_task_logs"),
    *[route
      for prefix in ("/api", "")
      for route in (
          Route("POST", f"{prefix}/job_bundle/", bundles.create_bundle,
                "Create a job bundle (needs the CONFIG role in the organization)",
                request_schema="NewBundle",
                responses={201: "Bundle", 400: "Error", 401: "Error", 403: "Error",
                           409: "Error"}, operation_id=f"job_bundles_create{SEED_PATH[prefix]}"),
          Route("GET", f"{prefix}/job_bundle/", bundles.list_bundles,
                "List the caller's job bundles", responses={200: "BundleList", 401: "Error"},
                query=(("search", "string"), ("name", "string")),
                operation_id=f"job_bundles_list{SEED_PATH[prefix]}"),
      )],
    Route("GET", "/api/job/{job_id}/log", forwarding.to_logger,
          "A job's log, newest first (rate-limited with the task log)",
          responses={200: "JobLog", 400: "Error", 401: "Error", 404: "Error", 429: "Error"},
          query=(("from", "string"), ("to", "string"), ("limit", "integer")),
          operation_id="gate_job_log"),
    Route("GET", "/api/me", me.me,
          "The caller: user, and each organization with the roles held in it",
          responses={200: "Me", 401: "Error"}, operation_id="me_get"),
]

# The GATE Cloud-style API (seed 004): JSON, or XML with `Accept`/`Content-Type:
# application/xml`.
GATE_JOB = "GateJob"
COMMON = {401: "Error", 404: "Error"}
CHANGE = {400: "Error", 401: "Error", 404: "Error", 409: "Error"}
ROUTES += [
    Route("GET", "/api/job", jobs.list_jobs, "List jobs in the given states (§2)",
          responses={200: "GateJobList", 400: "Error", 401: "Error"},
          query=(("state", "string"),), operation_id="gate_jobs_list"),
    Route("POST", "/api/job", jobs.create_job, "Create a RESERVED job", request_schema="NewJob",
          responses={201: GATE_JOB, 400: "Error", 401: "Error", 403: "Error"},
          operation_id="gate_jobs_create"),
    Route("GET", "/api/job/{job_id}", jobs.get_job, "A job's details (§3.1)",
          responses={200: GATE_JOB, **COMMON}, operation_id="gate_job_get"),
    Route("POST", "/api/job/{job_id}", jobs.rename_job, "Rename a job (§3.2)",
          request_schema="JobChanges", responses={200: GATE_JOB, **CHANGE},
          operation_id="gate_job_rename"),
    Route("DELETE", "/api/job/{job_id}", jobs.delete_job, "Delete a job (state DELETED)",
          responses={204: "", **CHANGE}, operation_id="gate_job_delete"),
    Route("GET", "/api/job/{job_id}/application", jobs.get_application,
          "The application's location, with a fresh putUrl for an uploaded one (§4.1)",
          responses={200: "Application", **COMMON}, operation_id="gate_application_get"),
    Route("POST", "/api/job/{job_id}/application", jobs.set_application,
          "Upload an application here, or use one in your own bucket (§4.2)",
          request_schema="ApplicationChange", responses={200: "Application", **CHANGE},
          operation_id="gate_application_set"),
    Route("GET", "/api/job/{job_id}/outputDirectory", jobs.get_output_directory,
          "Where results go (§5.1)", responses={200: "OutputDirectory", **COMMON},
          operation_id="gate_output_directory_get"),
    Route("POST", "/api/job/{job_id}/outputDirectory", jobs.set_output_directory,
          "The default location or your own bucket (§5.2)",
          request_schema="OutputDirectoryChange", responses={200: "OutputDirectory", **CHANGE},
          operation_id="gate_output_directory_set"),
    *[route for kind, schema in (("input", "InputSpec"), ("output", "OutputSpec"))
      for route in (
          Route("GET", f"/api/job/{{job_id}}/{kind}", specs.list_specs,
                f"The job's {kind} specifications (§6-7)",
                responses={200: f"{schema}List", **COMMON}, operation_id=f"gate_{kind}s_list"),
          Route("POST", f"/api/job/{{job_id}}/{kind}", specs.add_spec,
                f"Add an {kind} specification: 303 to its URL",
                request_schema=schema, responses={303: f"{schema}View", **CHANGE},
                operation_id=f"gate_{kind}s_add"),
          Route("GET", f"/api/job/{{job_id}}/{kind}/{{spec_id}}", specs.get_spec,
                f"An {kind} specification", responses={200: f"{schema}View", **COMMON},
                operation_id=f"gate_{kind}_get"),
          Route("POST", f"/api/job/{{job_id}}/{kind}/{{spec_id}}", specs.change_spec,
                f"Change an {kind} specification (null unsets a key)",
                request_schema=schema, responses={200: f"{schema}View", **CHANGE},
                operation_id=f"gate_{kind}_change"),
          Route("DELETE", f"/api/job/{{job_id}}/{kind}/{{spec_id}}", specs.delete_spec,
                f"Delete an {kind} specification", responses={204: "", **CHANGE},
                operation_id=f"gate_{kind}_delete"),
      )],
    Route("POST", "/api/job/{job_id}/control", control.control,
          "start (READY), resume (SUSPENDED), stop (ACTIVE) or reset (COMPLETED) (§8)",
          request_schema="Control", responses={204: "", **CHANGE}, operation_id="gate_job_control"),
    Route("GET", "/api/job/{job_id}/reports", control.list_reports,
          "URLs of the job's reports (§10)", responses={200: "ReportList", **COMMON},
          operation_id="gate_reports_list"),
    Route("GET", "/api/job/{job_id}/reports/summary", control.summary_report,
          "The summary report of the job's run", responses={200: "SummaryReport", **COMMON},
          operation_id="gate_summary_report_get"),
    Route("POST", "/api/data", data.create_bundle,
          "Create a data bundle; PUT its file to the answer's putUrl",
          request_schema="NewDataBundle",
          responses={201: "DataBundle", 400: "Error", 401: "Error", 403: "Error"},
          operation_id="data_bundles_create"),
    Route("GET", "/api/data", data.list_bundles, "The caller's data bundles",
          responses={200: "DataBundleList", 401: "Error"}, operation_id="data_bundles_list"),
    Route("GET", "/api/data/{bundle_id}", data.get_bundle,
          "A data bundle, its files and their download URLs",
          responses={200: "DataBundle", **COMMON}, operation_id="data_bundle_get"),
    Route("DELETE", "/api/data/{bundle_id}", data.delete_bundle,
          "Delete a data bundle and its files", responses={204: "", **COMMON},
          operation_id="data_bundle_delete"),
]


def add_routes(app: web.Application, routes: list[Route]) -> None:
    """Each route, and its twin with or without the trailing slash (clients type both; the
    OpenAPI document shows the form in the table)."""
    for route in routes:
        add_twins(app, route.method, route.path, route.handler)

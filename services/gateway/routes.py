"""Every API route in one table: registered from it, and documented from it (OpenAPI)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from services.gateway import bundles, forwarding, me, views

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


JOB = "Job"
ROUTES: list[Route] = [
    Route("POST", "/api/jobs/", views.create_job, "Submit a job",
          request_schema="JobSpec",
          responses={201: JOB, 400: "Error", 401: "Error", 403: "Error", 413: "Error",
                     503: "Error"}),
    Route("GET", "/api/jobs/", views.list_jobs, "List the caller's jobs, newest first",
          responses={200: "JobPage", 400: "Error", 401: "Error"},
          query=(("page", "integer"), ("page_size", "integer"), ("status", "string"),
                 ("tag", "string"), ("job_bundle_id", "string"))),
    Route("GET", "/api/jobs/{job_id}/", views.get_job, "Get a job",
          responses={200: JOB, 401: "Error", 404: "Error"}),
    Route("POST", "/api/jobs/{job_id}/restart/", views.restart_job,
          "Reset the tasks of a finished job and run it again under the same id",
          responses={200: JOB, 401: "Error", 404: "Error", 409: "Error"}),
    Route("GET", "/api/jobs/{job_id}/metrics/", views.job_metrics_view,
          "A finished job's metrics: cus, video_minutes_in/out, gb_in/out",
          responses={200: "JobMetrics", 401: "Error", 404: "Error", 409: "Error"}),
    Route("POST", "/api/jobs/{job_id}/stop/", views.stop_job,
          "Stop a queued or running job: it and its unfinished tasks end Cancelled",
          responses={200: JOB, 401: "Error", 404: "Error", 409: "Error"}),
    Route("POST", "/api/jobs/{job_id}/resubmit/", views.resubmit_job,
          "Run a finished job's specification again as a new job",
          responses={201: JOB, 401: "Error", 404: "Error", 409: "Error"}),
    Route("GET", "/api/jobs/{job_id}/tasks/{task_id}/logs/", forwarding.to_logger,
          "A task's log, oldest first (20 calls a minute, 1000 a day per key, with the job log)",
          responses={200: "TaskLogs", 400: "Error", 401: "Error", 404: "Error", 429: "Error"},
          query=(("limit", "integer"), ("cursor", "string"))),
    *[route
      for prefix in ("/api", "")
      for route in (
          Route("POST", f"{prefix}/job_bundle/", bundles.create_bundle,
                "Create a job bundle (needs the CONFIG role in the organization)",
                request_schema="NewBundle",
                responses={201: "Bundle", 400: "Error", 401: "Error", 403: "Error",
                           409: "Error"}),
          Route("GET", f"{prefix}/job_bundle/", bundles.list_bundles,
                "List the caller's job bundles", responses={200: "BundleList", 401: "Error"},
                query=(("search", "string"), ("name", "string"))),
      )],
    Route("GET", "/api/job/{job_id}/log", forwarding.to_logger,
          "A job's log, newest first (rate-limited with the task log)",
          responses={200: "JobLog", 400: "Error", 401: "Error", 404: "Error", 429: "Error"},
          query=(("from", "string"), ("to", "string"), ("limit", "integer"))),
    Route("GET", "/api/me", me.me,
          "The caller: user, and each organization with the roles held in it",
          responses={200: "Me", 401: "Error"}),
]


def add_routes(app: web.Application, routes: list[Route]) -> None:
    """Each route, and its twin without the trailing slash (clients type both)."""
    for route in routes:
        app.router.add_route(route.method, route.path, route.handler)
        bare = route.path.rstrip("/")
        if bare != route.path:
            app.router.add_route(route.method, bare, route.handler)

"""A job as the API shows it (the seed's fields and ours), from its stored document. The
gateway answers with it and the scheduler POSTs it to a job's `notify` URL."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from shared.jobs import Status, ordered_tasks, redact
from shared.objects import ObjectStore
from shared.store import Document

SHOWN_OF_TASK = ("parameters", "error", "result")


def iso(moment: datetime | None) -> str | None:
    """The seed's timestamp form: `2018-04-26T17:27:43Z`."""
    if moment is None:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def job_url(base_url: str, job_id: str) -> str:
    return f"{base_url.rstrip('/')}/api/jobs/{job_id}/"


async def render_outputs(outputs: list[Document], objects: ObjectStore) -> list[Document]:
    """Each output with a presigned URL valid for an hour (objects of the platform only: an
    object in the user's own bucket is reached with the user's own credentials)."""

    async def one(output: Document) -> Document:
        url = None
        if output.get("bucket") is None:
            url = await objects.presigned_url(output["path"])
        shown = {"path": output["path"], "size": output["size"], "url": url}
        if output.get("bucket") is not None:
            shown["bucket"] = output["bucket"]
        return shown

    return list(await asyncio.gather(*(one(output) for output in outputs)))


async def render_task(task: Document, objects: ObjectStore) -> Document:
    """`task` with its parameters, error and result as `shown` (masked) beforehand."""
    status = Status(task["status"])
    return {
        "id": task["id"],
        "tool": task["tool"],
        "parameters": task["parameters"],
        "status": int(status),
        "status_text": status.text,
        "progress": round(float(task.get("progress") or 0.0), 1),
        "attempts": task["attempt"] - task["attempt_base"],
        "error": task.get("error"),
        "outputs": await render_outputs(task.get("outputs") or [], objects),
        "result": task.get("result") or {},
        "started": iso(task.get("started")),
        "finished": iso(task.get("finished")),
    }


def _shown(job: Document) -> Document:
    """The parts of `job` that may hold secrets, masked."""
    return {"tasks": [{**task, **redact({key: task.get(key) for key in SHOWN_OF_TASK})}
                      for task in ordered_tasks(job)],
            "notify": redact(job.get("notify")), "tags": redact(job.get("tags") or [])}


async def render_job(job: Document, base_url: str, objects: ObjectStore) -> dict[str, Any]:
    """Masking is done in a thread: it scans every string of the job, up to megabytes,
    which the event loop spends on other requests meanwhile."""
    status = Status(job["status"])
    shown = await asyncio.to_thread(_shown, job)
    tasks = await asyncio.gather(*(render_task(task, objects) for task in shown["tasks"]))
    return {
        "id": job["_id"],
        "url": job_url(base_url, job["_id"]),
        "tasks": list(tasks),
        "notify": shown["notify"],
        "organization": job.get("organization"),
        "organization_id": job.get("organization_id"),
        "user": job.get("user"),
        "status": int(status),
        "status_text": status.text,
        "created": iso(job["created"]),
        "modified": iso(job["modified"]),
        "finished": iso(job.get("finished")),
        "project_offer": None,
        "purchase_order": None,
        "purchase_order_id": None,
        "job_bundle": job.get("job_bundle"),
        "job_bundle_id": job.get("job_bundle_id"),
        "tags": shown["tags"],
        "region": job["region"],
        "role_arn": None,
    }

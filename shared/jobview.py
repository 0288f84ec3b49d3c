"""A job as the API shows it (the seed's fields and ours), from its stored document. The
gateway answers with it and the scheduler POSTs it to a job's `notify` URL."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from shared.jobs import Status, ordered_tasks, redact
from shared.objects import ObjectStore
from shared.store import Document


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
    status = Status(task["status"])
    return {
        "id": task["id"],
        "tool": task["tool"],
        "parameters": redact(task["parameters"]),
        "status": int(status),
        "status_text": status.text,
        "progress": round(float(task.get("progress") or 0.0), 1),
        "attempts": task["attempt"] - task["attempt_base"],
        "error": redact(task.get("error")),
        "outputs": await render_outputs(task.get("outputs") or [], objects),
        "result": redact(task.get("result") or {}),
        "started": iso(task.get("started")),
        "finished": iso(task.get("finished")),
    }


async def render_job(job: Document, base_url: str, objects: ObjectStore) -> dict[str, Any]:
    status = Status(job["status"])
    tasks = await asyncio.gather(*(render_task(task, objects) for task in ordered_tasks(job)))
    return {
        "id": job["_id"],
        "url": job_url(base_url, job["_id"]),
        "tasks": list(tasks),
        "notify": redact(job.get("notify")),
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
        "tags": redact(job.get("tags") or []),
        "region": job["region"],
        "role_arn": None,
    }

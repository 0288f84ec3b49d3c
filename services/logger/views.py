"""The two log endpoints of the seeds, rate-limited together per API key:

- `GET /api/jobs/{id}/tasks/{task_id}/logs/`: `{"logs": [{"timestamp", "message"}], "next"}`,
  oldest first, with `?limit=` and `?cursor=` (seed 000).
- `GET /api/job/{id}/log`: `[{"date", "message"}]`, newest first, with `?from=` and `?to=`
  (seed 004, section 9), or `<log><entry date="…">…</entry></log>` when XML is asked for."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pymongo import ASCENDING, DESCENDING

from shared.api import STORE, ApiError, bad_request, int_query, not_found
from shared.auth import PRINCIPAL
from shared.jobs import task_key
from shared.numbers import whole_number
from shared.ratelimit import RateLimiter
from shared.routing import add_twins
from shared.store import Document
from shared.xmlforms import respond

LIMITER = web.AppKey("limiter", RateLimiter)
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
MAX_POSITION = 2**63
# A `+` in a query string arrives as a space; an offset written that way is still meant.
_SPACED_OFFSET = re.compile(r" (\d\d:?\d\d)$")


async def limited(request: web.Request) -> dict[str, str]:
    """Count this call against the caller's key; 429 when over a limit."""
    limiter = request.app[LIMITER]
    verdict = await limiter.hit(request[PRINCIPAL].key_id)
    headers = verdict.headers(limiter.policy)
    if not verdict.allowed:
        raise ApiError(
            429, f"too many log requests: {verdict.limit.calls} per {verdict.limit.name}; "
            f"retry in {verdict.reset_in} s", headers=headers,
        )
    return headers


async def visible_job(request: web.Request) -> Document:
    job = await request.app[STORE].jobs.find_one(
        {"_id": request.match_info["job_id"],
         "organization_id": {"$in": request[PRINCIPAL].organization_ids}},
        projection={"tasks": 1},
    )
    if job is None:
        raise not_found(f"job {request.match_info['job_id']!r}")
    return job


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(str(position).encode()).decode().rstrip("=")


def decode_cursor(raw: str) -> int:
    try:
        position = whole_number(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        position = None
    # Positions are 64-bit in the store, which takes no larger number in a query.
    if position is None or position >= MAX_POSITION:
        raise bad_request([{"field": "cursor", "message": "is not a cursor this API gave out"}])
    return position


def parse_moment(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    text = _SPACED_OFFSET.sub(r"+\1", raw.strip())
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise bad_request([{"field": name, "message":
                            f"{raw!r} is not an ISO 8601 date and time, e.g. "
                            "2012-09-01T10:00:00, ...Z or ...%2B02:00"}]) from None
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00: before the first UTC moment
        raise bad_request([{"field": name, "message":
                            f"{raw!r} is out of range once in UTC"}]) from None


def unix_seconds(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def iso_date(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def task_logs(request: web.Request) -> web.Response:
    headers = await limited(request)
    job = await visible_job(request)
    raw_task = request.match_info["task_id"]
    task_id = whole_number(raw_task)
    if task_id is None or task_key(task_id) not in job["tasks"]:
        raise not_found(f"task {raw_task!r} of job {job['_id']!r}")
    limit = int_query(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    query: dict[str, Any] = {"job_id": job["_id"], "task_id": task_id}
    if "cursor" in request.query:
        query["position"] = {"$gt": decode_cursor(request.query["cursor"])}
    found = await request.app[STORE].logs.find(query).sort("position", ASCENDING).limit(
        limit + 1).to_list()
    page = found[:limit]
    after_last = encode_cursor(page[-1]["position"]) if page else request.query.get("cursor")
    return web.json_response({
        "logs": [{"timestamp": unix_seconds(e["timestamp"]), "message": e["message"]}
                 for e in page],
        # `next`: more lines wait now; `cursor`: where to resume later for lines written
        # after these (what `conveyor logs --follow` does).
        "next": after_last if len(found) > limit else None,
        "cursor": after_last,
    }, headers=headers)


async def visible_job_id(request: web.Request) -> str:
    """The job log's job: a job of the core, or a GATE Cloud-style job not yet started
    (whose log holds only what its API did)."""
    store = request.app[STORE]
    query = {"_id": request.match_info["job_id"],
             "organization_id": {"$in": request[PRINCIPAL].organization_ids}}
    job = (await store.jobs.find_one(query, projection={"_id": 1})
           or await store.gate_jobs.find_one(query, projection={"_id": 1}))
    if job is None:
        raise not_found(f"job {request.match_info['job_id']!r}")
    return str(job["_id"])


async def job_log(request: web.Request) -> web.Response:
    """Newest first; XML (`<log><entry date="…">message</entry></log>`) when asked."""
    headers = await limited(request)
    job_id = await visible_job_id(request)
    start, end = parse_moment(request, "from"), parse_moment(request, "to")
    if start and end and start > end:
        raise bad_request([{"field": "from", "message": "is after 'to'"}])
    limit = int_query(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    query: dict[str, Any] = {"job_id": job_id}
    window: dict[str, datetime] = {}
    if start:
        window["$gte"] = start
    if end:
        window["$lte"] = end
    if window:
        query["timestamp"] = window
    found = await request.app[STORE].logs.find(query).sort(
        [("timestamp", DESCENDING), ("position", DESCENDING)]).limit(limit).to_list()
    entries = [{"date": iso_date(e["timestamp"]), "message": e["message"]} for e in found]
    return respond(request, entries, "log", headers=headers,
                   xml=[{"@date": e["date"], "#text": e["message"]} for e in entries])


def add_log_routes(app: web.Application) -> None:
    """The paths the gateway forwards here, each with its slash twin as there."""
    add_twins(app, "GET", "/api/jobs/{job_id}/tasks/{task_id}/logs/", task_logs)
    add_twins(app, "GET", "/api/job/{job_id}/log", job_log)

"""`Idempotency-Key` on `POST /api/jobs/`: the same key with the same body within 24 hours
answers the job the first request created and starts nothing new; the same key with another
body is a 409. Keys belong to the user who sent them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from pymongo.errors import DuplicateKeyError

from shared.api import ApiError, bad_request
from shared.store import Document, Store

HEADER = "Idempotency-Key"
LIFETIME = timedelta(hours=24)
MAX_KEY = 255
# A key claimed this long ago whose job was never stored belongs to a request that failed.
ABANDONED = timedelta(minutes=1)


@dataclass(frozen=True)
class Claim:
    record_id: str
    body_hash: str


def body_hash(payload: Any) -> str:
    """The same JSON with other whitespace or key order is the same body."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def claim_for(request: web.Request, user_id: str, payload: Any) -> Claim | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not key or len(key) > MAX_KEY or not key.isprintable():
        raise bad_request([{"field": HEADER, "message":
                            f"must be 1-{MAX_KEY} printable characters"}])
    return Claim(f"{user_id}:{key}", body_hash(payload))


async def earlier_job(store: Store, claim: Claim) -> Document | None:
    """The job an earlier request with this key created, or None if this is the first."""
    record = await store.idempotency.find_one({"_id": claim.record_id})
    if record is None:
        return None
    if record["body_hash"] != claim.body_hash:
        raise ApiError(409, f"this {HEADER} was used with another request body")
    job = await store.jobs.find_one({"_id": record["job_id"]})
    if job is None:
        if record["expires"] - LIFETIME < datetime.now(UTC) - ABANDONED:
            # The request that claimed the key never stored its job (it failed): free it.
            await store.idempotency.delete_one({"_id": claim.record_id})
            return None
        raise ApiError(409, f"a request with this {HEADER} is still being handled; retry")
    return job


async def record(store: Store, claim: Claim, job_id: str) -> Document | None:
    """Tie the key to `job_id`; if another request got there first, its job (or a 409)."""
    try:
        await store.idempotency.insert_one({
            "_id": claim.record_id, "body_hash": claim.body_hash, "job_id": job_id,
            "expires": datetime.now(UTC) + LIFETIME,
        })
    except DuplicateKeyError:
        return await earlier_job(store, claim)
    return None


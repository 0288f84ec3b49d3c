"""`Authorization: api-key KEY` on every `/api/` route. Keys are stored as SHA-256 digests;
the digest found is compared again in constant time, and a revoked key is refused."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aiohttp import web
from aiohttp.typedefs import Handler

from shared.accounts import hash_key
from shared.api import STORE, ApiError

PROTECTED_PREFIXES = ("/api/", "/job_bundle")
PUBLIC_PATHS = frozenset({"/api/openapi.json"})
# Routes (by canonical path) that pass the request on to another service, which
# authenticates it itself.
FORWARDED = web.AppKey("forwarded_paths", frozenset[str])
# Recording every use would be one write per request; once a minute is enough to tell.
LAST_USED_RESOLUTION = timedelta(minutes=1)
SCHEME = "api-key"


@dataclass(frozen=True)
class Membership:
    organization_id: str
    organization: str
    roles: frozenset[str]


@dataclass(frozen=True)
class Principal:
    user_id: str
    user: str
    key_id: str
    memberships: dict[str, Membership] = field(default_factory=dict)

    @property
    def organization_ids(self) -> list[str]:
        return list(self.memberships)


PRINCIPAL = web.RequestKey("principal", Principal)


def unauthorized(message: str) -> ApiError:
    return ApiError(401, message, headers={"WWW-Authenticate": SCHEME})


async def authenticate(request: web.Request) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if not header:
        raise unauthorized("missing Authorization header; send 'Authorization: api-key KEY'")
    if scheme.lower() != SCHEME or not key.strip():
        raise unauthorized("Authorization must be 'api-key KEY'")
    store = request.app[STORE]
    digest = hash_key(key.strip())
    record = await store.api_keys.find_one({"key_hash": digest})
    if record is None or not hmac.compare_digest(record["key_hash"], digest):
        raise unauthorized("invalid API key")
    if record.get("revoked"):
        raise unauthorized("API key revoked")
    user = await store.users.find_one({"_id": record["user_id"]})
    if user is None:
        raise unauthorized("the user of this API key no longer exists")
    now = datetime.now(UTC)
    last = record.get("last_used")
    if last is None or now - last > LAST_USED_RESOLUTION:
        await store.api_keys.update_one(
            {"_id": record["_id"]}, {"$currentDate": {"last_used": True}}
        )
    memberships = user.get("memberships", [])
    org_ids = [m["organization_id"] for m in memberships]
    names = {
        org["_id"]: org["name"]
        async for org in store.organizations.find({"_id": {"$in": org_ids}})
    }
    return Principal(
        user_id=user["_id"], user=user["name"], key_id=record["_id"],
        memberships={
            m["organization_id"]: Membership(m["organization_id"],
                                             names.get(m["organization_id"], ""),
                                             frozenset(m.get("roles", [])))
            for m in memberships if m["organization_id"] in names
        },
    )


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    resource = request.match_info.route.resource
    forwarded = resource is not None and resource.canonical in request.app.get(
        FORWARDED, frozenset()
    )
    if (request.path.startswith(PROTECTED_PREFIXES) and request.path not in PUBLIC_PATHS
            and not forwarded):
        request[PRINCIPAL] = await authenticate(request)
    return await handler(request)

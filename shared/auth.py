"""`Authorization: api-key KEY` on every `/api/` route, or HTTP Basic as GATE Cloud's clients
send it: the key's id (the part before the dot) as user name, its secret as password. Keys
are stored as SHA-256 digests; the digest found is compared again in constant time, and a
revoked key is refused. OPTIONS needs no key: it tells only which methods a path takes, and
a CORS preflight carries no credentials."""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aiohttp import hdrs, web
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
# Both schemes, for a client that sent neither or a Basic one that failed. A refused api-key
# gets only its own: a browser (the console) answered a Basic challenge asks for a password.
CHALLENGE = f'{SCHEME}, Basic realm="conveyor"'
HOW = ("send 'Authorization: api-key KEY', or HTTP Basic with the key's id (before the "
       "dot) as user name and the rest as password")


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


def unauthorized(message: str, challenge: str = CHALLENGE) -> ApiError:
    return ApiError(401, message, headers={hdrs.WWW_AUTHENTICATE: challenge})


def presented_key(header: str) -> tuple[str, str]:
    """The API key an `Authorization` header carries, and the challenge to answer if it is
    refused."""
    scheme, _, credentials = header.partition(" ")
    if not header:
        raise unauthorized(f"missing Authorization header; {HOW}")
    if scheme.lower() == SCHEME:
        if not credentials.strip():
            raise unauthorized("'Authorization: api-key' needs the key after it", SCHEME)
        return credentials.strip(), SCHEME
    if scheme.lower() != "basic":
        raise unauthorized(f"unknown Authorization scheme {scheme[:20]!r}; {HOW}")
    # By hand: aiohttp's BasicAuth.decode goes with its BasicAuth, deprecated for 4.0.
    try:
        decoded = base64.b64decode(credentials.encode("ascii"), validate=True).decode()
    except (ValueError, binascii.Error):  # not ASCII, not base64, not UTF-8
        decoded = ""
    login, colon, password = decoded.partition(":")
    if not colon:
        raise unauthorized("Basic credentials must be the base64 (UTF-8) of 'KEY_ID:SECRET'")
    if not login or not password:
        part = "user name (the key's id)" if not login else "password (the key's secret)"
        raise unauthorized(f"Basic credentials without a {part}")
    return f"{login}.{password}", CHALLENGE


async def authenticate(request: web.Request) -> Principal:
    key, challenge = presented_key(request.headers.get(hdrs.AUTHORIZATION, ""))
    store = request.app[STORE]
    digest = hash_key(key)
    record = await store.api_keys.find_one({"key_hash": digest})
    if record is None or not hmac.compare_digest(record["key_hash"], digest):
        raise unauthorized("invalid API key", challenge)
    if record.get("revoked"):
        raise unauthorized("API key revoked", challenge)
    user = await store.users.find_one({"_id": record["user_id"]})
    if user is None:
        raise unauthorized("the user of this API key no longer exists", challenge)
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
            and not forwarded and request.method != hdrs.METH_OPTIONS):
        request[PRINCIPAL] = await authenticate(request)
    return await handler(request)

"""Job bundles of the seed: `POST /job_bundle/` (CONFIG role in the organization) and
`GET /job_bundle/` (`?search=` part of the name, `?name=` the whole name); the same under
`/api/job_bundle/`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pymongo.errors import DuplicateKeyError

from services.gateway.keys import STORE
from services.gateway.submission import read_json
from shared.accounts import new_id
from shared.api import ApiError, bad_request
from shared.auth import PRINCIPAL, Membership, Principal
from shared.names import DisplayName
from shared.store import Document
from shared.toolspecs import field_errors

CONFIG_ROLE = "CONFIG"


class NewBundle(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: DisplayName
    organization_name: str | None = Field(default=None, min_length=1)


def bundle_json(bundle: Document) -> dict[str, Any]:
    return {"id": bundle["_id"], "name": bundle["name"],
            "organization": bundle["organization"],
            "organization_id": bundle["organization_id"],
            "created": bundle["created"].strftime("%Y-%m-%dT%H:%M:%SZ")}


def membership_for(principal: Principal, organization_name: str | None,
                   field: str = "organization_name") -> Membership:
    """The organization named, or the caller's only one; `field` is the name the route
    takes it by (the seed's job bundles say `organization_name`, GATE Cloud `organization`)."""
    if organization_name is None:
        if len(principal.memberships) == 1:
            return next(iter(principal.memberships.values()))
        if not principal.memberships:
            raise ApiError(403, "your user belongs to no organization")
        names = ", ".join(sorted(m.organization for m in principal.memberships.values()))
        raise bad_request([{"field": field, "message":
                            f"you belong to several organizations ({names}): name one"}])
    for member in principal.memberships.values():
        if member.organization == organization_name:
            return member
    raise ApiError(403, f"you are not a member of organization {organization_name!r}")


async def create_bundle(request: web.Request) -> web.Response:
    try:
        spec = NewBundle.model_validate(await read_json(request))
    except ValidationError as exc:
        raise bad_request(field_errors(exc, "")) from None
    principal = request[PRINCIPAL]
    member = membership_for(principal, spec.organization_name)
    if CONFIG_ROLE not in member.roles:
        raise ApiError(403, f"creating job bundles needs the {CONFIG_ROLE} role in "
                            f"organization {member.organization!r}")
    bundle = {"_id": new_id(), "name": spec.name, "organization_id": member.organization_id,
              "organization": member.organization, "created": datetime.now(UTC),
              "created_by": principal.user_id}
    try:
        await request.app[STORE].job_bundles.insert_one(bundle)
    except DuplicateKeyError:
        raise ApiError(409, f"organization {member.organization!r} has a job bundle named "
                            f"{spec.name!r} already") from None
    return web.json_response(bundle_json(bundle), status=201)


async def list_bundles(request: web.Request) -> web.Response:
    principal = request[PRINCIPAL]
    query: Document = {"organization_id": {"$in": principal.organization_ids}}
    if "name" in request.query:
        query["name"] = request.query["name"]
    bundles = await request.app[STORE].job_bundles.find(query).sort("name", 1).to_list()
    search = request.query.get("search", "").casefold()
    return web.json_response(
        [bundle_json(b) for b in bundles if search in b["name"].casefold()]
    )

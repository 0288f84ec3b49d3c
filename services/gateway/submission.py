"""Turning a request body into a job document: every field validated (each tool's parameters
against its schema), the organization, bundle and region resolved for the caller."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from shared.api import ApiError, bad_request, parse_json_body
from shared.auth import Membership, Principal
from shared.jobs import new_job_document, new_job_id
from shared.jobspec import JobSpec
from shared.secrets import sealer_for
from shared.settings import Settings
from shared.store import Document, Store
from shared.toolspecs import internal_to
from shared.validation import InvalidJob, validate_job


async def read_json(request: web.Request) -> Any:
    """The body as JSON, or a 400 saying why not (413 comes from aiohttp's size limit).
    Decoded in a thread: a body at the size limit takes tens of milliseconds, which the
    event loop then spends on other requests."""
    raw = await request.read()
    if not raw.strip():
        raise bad_request([{"field": "body", "message": "is empty; send the job as JSON"}])
    return await asyncio.to_thread(parse_json_body, raw)


async def checked_spec(payload: Any, settings: Settings) -> JobSpec:
    """`parse_spec` in a thread, for the same reason."""
    return await asyncio.to_thread(parse_spec, payload, settings)


def parse_spec(payload: Any, settings: Settings) -> JobSpec:
    try:
        spec = validate_job(payload, settings.regions)
    except InvalidJob as exc:
        raise bad_request(exc.errors) from None
    internal = [{"field": f"tasks.{index}.tool",
                 "message": f"{task.tool!r} runs only through {facade.name} ({facade.path})"}
                for index, task in enumerate(spec.tasks)
                if (facade := internal_to(task.tool)) is not None]
    if internal:
        raise bad_request(internal)
    return spec


def choose_organization(principal: Principal, spec: JobSpec) -> Membership:
    """The seed's rule: a user in several organizations names one (by id or by name)."""
    if spec.organization_id is not None:
        member = principal.memberships.get(str(spec.organization_id))
        if member is None:
            raise ApiError(403, f"you are not a member of organization {spec.organization_id}")
        if spec.organization is not None and spec.organization != member.organization:
            raise bad_request([{"field": "organization", "message":
                                "names a different organization than organization_id"}])
        return member
    if spec.organization is not None:
        for member in principal.memberships.values():
            if member.organization == spec.organization:
                return member
        raise ApiError(403, f"you are not a member of organization {spec.organization!r}")
    if len(principal.memberships) == 1:
        return next(iter(principal.memberships.values()))
    if not principal.memberships:
        raise ApiError(403, "your user belongs to no organization")
    names = ", ".join(sorted(m.organization for m in principal.memberships.values()))
    raise bad_request([{"field": "organization_id", "message":
                        f"you belong to several organizations ({names}): "
                        "give organization_id or organization"}])


async def choose_bundle(
    store: Store, spec: JobSpec, organization_id: str
) -> tuple[str | None, str | None]:
    """The bundle by id, else by name; both given must name the same one (as
    `organization_id` and `organization` must)."""
    if spec.job_bundle_id is None and spec.job_bundle is None:
        return None, None
    query: Document
    if spec.job_bundle_id is not None:
        field, query = "job_bundle_id", {"_id": str(spec.job_bundle_id)}
    else:
        field, query = "job_bundle", {"name": spec.job_bundle}
    bundle = await store.job_bundles.find_one({**query, "organization_id": organization_id})
    if bundle is None:
        raise bad_request([{"field": field, "message": "no such job bundle in the organization"}])
    if spec.job_bundle is not None and spec.job_bundle != bundle["name"]:
        raise bad_request([{"field": "job_bundle", "message":
                            f"names a different job bundle than job_bundle_id (that one is "
                            f"{bundle['name']!r})"}])
    return str(bundle["_id"]), str(bundle["name"])


async def build_job(
    store: Store, settings: Settings, principal: Principal, spec: JobSpec
) -> Document:
    member = choose_organization(principal, spec)
    bundle_id, bundle_name = await choose_bundle(store, spec, member.organization_id)
    # In a thread: sealing scans every string of the job for secrets.
    return await asyncio.to_thread(
        new_job_document, new_job_id(), spec, region=spec.region or settings.default_region,
        organization_id=member.organization_id, organization=member.organization,
        user_id=principal.user_id, user=principal.user,
        job_bundle_id=bundle_id, job_bundle=bundle_name, now=datetime.now(UTC),
        sealer=sealer_for(settings),
    )

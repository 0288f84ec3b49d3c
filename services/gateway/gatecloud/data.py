"""Data bundles, the seed's "data API": an UPLOAD bundle is one file (an archive of documents
for a job's input) uploaded with a presigned `putUrl`; a RESULT bundle holds the files a job
run wrote to the default location. `/api/data` lists, `/api/data/{id}` shows (with download
URLs) and deletes (204, files too)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from services.gateway.bundles import membership_for
from services.gateway.gatecloud.bodies import NewBundle, read_body
from services.gateway.gatecloud.records import (
    STARTED,
    bundle_url,
    core_jobs,
    find_bundle,
    job_url,
    state_of,
)
from services.gateway.keys import OBJECTS, STORE
from shared.api import ApiError, not_found
from shared.auth import PRINCIPAL
from shared.jobs import new_job_id
from shared.jobview import iso
from shared.objects import ObjectStore
from shared.store import Document, Store
from shared.xmlforms import respond


async def bundle_view(request: web.Request, bundle: Document) -> dict[str, Any]:
    objects = request.app[OBJECTS]
    files = []
    for key, size in await objects.list_sizes(bundle["prefix"]):
        files.append({"name": key.removeprefix(bundle["prefix"]), "size": size,
                      "url": await objects.presigned_url(key)})
    view: dict[str, Any] = {
        "id": bundle["_id"], "url": bundle_url(request, bundle["_id"]), "name": bundle["name"],
        "type": bundle["kind"], "dateCreated": iso(bundle["created"]),
        "size": sum(file["size"] for file in files), "files": files,
    }
    if bundle["kind"] == "UPLOAD":
        view["fileName"] = bundle["fileName"]
        view["uploaded"] = bool(files)
        view["putUrl"] = await objects.presigned_put_url(bundle["prefix"] + bundle["fileName"])
    else:
        view["job"] = job_url(request, bundle["job_id"])
    return view


async def visible_bundle(request: web.Request) -> Document:
    bundle_id = request.match_info["bundle_id"]
    bundle = await find_bundle(request.app[STORE], bundle_id,
                               request[PRINCIPAL].organization_ids)
    if bundle is None:
        raise not_found(f"data bundle {bundle_id!r}")
    return bundle


async def create_bundle(request: web.Request) -> web.Response:
    """A bundle waiting for its file: PUT it (`application/octet-stream`) to `putUrl`."""
    body = await read_body(request, "bundle", NewBundle)
    member = membership_for(request[PRINCIPAL], body.organization, "organization")
    bundle_id = new_job_id()
    bundle = {"_id": bundle_id, "name": body.name, "organization_id": member.organization_id,
              "kind": "UPLOAD", "prefix": f"data/{bundle_id}/", "fileName": body.fileName,
              "job_id": None, "created": datetime.now(UTC)}
    await request.app[STORE].data_bundles.insert_one(bundle)
    return respond(request, await bundle_view(request, bundle), "bundle", status=201,
                   headers={"Location": bundle_url(request, bundle_id)})


async def get_bundle(request: web.Request) -> web.Response:
    return respond(request, await bundle_view(request, await visible_bundle(request)), "bundle")


async def list_bundles(request: web.Request) -> web.Response:
    found = await request.app[STORE].data_bundles.find(
        {"organization_id": {"$in": request[PRINCIPAL].organization_ids}}
    ).sort([("created", 1), ("_id", 1)]).to_list()
    return respond(request, [{"id": bundle["_id"], "url": bundle_url(request, bundle["_id"]),
                              "name": bundle["name"], "type": bundle["kind"]}
                             for bundle in found], "bundles")


async def delete_bundle(request: web.Request) -> web.Response:
    """The bundle and its files (409 while a running job reads it); inputs that name it
    fail to start until changed."""
    bundle = await visible_bundle(request)
    store = request.app[STORE]
    reader = await active_reader(store, bundle)
    if reader is not None:
        raise ApiError(409, f"job {reader} is reading this bundle now; stop it or "
                            "wait for it to complete")
    await remove_bundle(store, request.app[OBJECTS], bundle)
    return web.Response(status=204)


async def active_reader(store: Store, bundle: Document) -> str | None:
    """The id of an ACTIVE job of the bundle's organization that has it as an input."""
    started = await store.gate_jobs.find(
        {"organization_id": bundle["organization_id"], "phase": STARTED}).to_list()
    cores = await core_jobs(store, started)
    for job in started:
        uses = any(spec["sourceBundle"] == bundle["_id"] for spec in job["inputs"])
        if uses and state_of(job, cores.get(job["_id"])) == "ACTIVE":
            return str(job["_id"])
    return None


async def remove_bundle(store: Store, objects: ObjectStore, bundle: Document) -> bool:
    """The bundle's files, the bundle, and a job's `resultBundle` naming it. False when
    another request removed the record first (the files are deleted either way)."""
    await objects.delete_prefix(bundle["prefix"])
    removed = await store.data_bundles.delete_one({"_id": bundle["_id"]})
    if bundle["kind"] == "RESULT":
        await store.gate_jobs.update_many({"result_bundle": bundle["_id"]},
                                          {"$set": {"result_bundle": None}})
    return removed.deleted_count == 1

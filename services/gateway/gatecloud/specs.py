"""§6 and §7 of the seed: a job's input specifications (archives in data bundles) and output
specifications (file formats, or a Mímir index). Adding one answers 303 to its URL; each URL
answers GET, POST (change; `null` or `xsi:nil` unsets a key) and DELETE (204)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel

from services.gateway.gatecloud.bodies import (
    MAX_LISTED,
    InputSpec,
    OutputSpec,
    parse,
    read_fields,
)
from services.gateway.gatecloud.jobs import change, edit, editable
from services.gateway.gatecloud.records import (
    bundle_url,
    find_bundle,
    job_url,
    visible_gate_job,
)
from services.gateway.keys import STORE
from shared.api import ApiError, bad_request, not_found
from shared.gate import DEFAULT_EXTENSIONS
from shared.redaction import redact
from shared.store import Document
from shared.xmlforms import respond

RESULTS = "RESULTS"
# Archive types by the uploaded file's name, when an input does not say.
TYPES_BY_SUFFIX = (
    (".zip", "ZIP"), (".tar", "TAR"), (".tar.gz", "TAR"), (".tgz", "TAR"), (".tar.bz2", "TAR"),
    (".tar.xz", "TAR"), (".arc", "ARC"), (".arc.gz", "ARC"),
)


def stored(model: BaseModel) -> Document:
    """A spec's fields as stored: secrets in the clear (the worker needs them), None left out."""
    fields = model.model_dump(exclude_none=True)
    if "password" in fields:
        fields["password"] = fields["password"].get_secret_value()
    return fields


def spec_url(request: web.Request, job_id: str, kind: str, spec_id: str) -> str:
    return f"{job_url(request, job_id)}/{kind}/{spec_id}"


def input_view(request: web.Request, job: Document, spec: Document) -> dict[str, Any]:
    shown: dict[str, Any] = redact({
        "url": spec_url(request, job["_id"], "input", spec["id"]), "id": spec["id"],
        **{key: value for key, value in spec.items() if key not in {"id", "sourceBundle"}},
        "sourceBundle": bundle_url(request, spec["sourceBundle"])})
    return shown


def output_view(request: web.Request, job: Document, spec: Document) -> dict[str, Any]:
    """§7.3: every key but the password (and an `indexUrl`'s secrets masked)."""
    shown: dict[str, Any] = redact({
        "url": spec_url(request, job["_id"], "output", spec["id"]), "id": spec["id"],
        **{key: value for key, value in spec.items() if key not in {"id", "password"}}})
    return shown


VIEWS = {"input": input_view, "output": output_view}
MODELS: dict[str, type[InputSpec] | type[OutputSpec]] = {"input": InputSpec,
                                                          "output": OutputSpec}
FIELDS = {"input": "inputs", "output": "outputs"}


def kind_of(request: web.Request) -> str:
    return "input" if request.path.rstrip("/").split("/")[4] == "input" else "output"


def file_extension(spec: Document) -> str | None:
    """The ending a file output gives its files (None: a Mímir output writes none)."""
    if spec["type"] == "MIMIR":
        return None
    extension: str = spec.get("fileExtension") or DEFAULT_EXTENSIONS[spec["type"]]
    return extension


async def checked(request: web.Request, job: Document, kind: str, spec: Document,
                  spec_id: str | None = None) -> Document:
    """The spec to store. An output's files must not take another output's file names; an
    input's bundle must be of the job's organization; an uploaded archive's type defaults to
    what the file's name says, a bundle of results is of type RESULTS."""
    if kind == "output":
        ending = file_extension(spec)
        clash = [other["id"] for other in job["outputs"]
                 if other["id"] != spec_id and ending and file_extension(other) == ending]
        if clash:
            raise bad_request([{"field": "fileExtension", "message":
                                f"output {clash[0]} writes files ending {ending!r} already; "
                                "give this one another fileExtension"}])
        return spec
    bundle = await find_bundle(request.app[STORE], str(spec["sourceBundle"]),
                               [job["organization_id"]])
    if bundle is None:
        raise bad_request([{"field": "sourceBundle", "message":
                            f"no data bundle {spec['sourceBundle']!r} in the job's "
                            "organization (see GET /api/data)"}])
    spec = {**spec, "sourceBundle": bundle["_id"]}
    if bundle["kind"] == "RESULT":
        # Another job's results: their documents are read back out of its output files.
        if spec.get("type", RESULTS) != RESULTS:
            raise bad_request([{"field": "type", "message":
                                f"a bundle of job results is read as type {RESULTS}"}])
        return stored(parse(InputSpec, {**spec, "type": RESULTS}))
    if spec.get("type") == RESULTS:
        raise bad_request([{"field": "type", "message":
                            f"{RESULTS} is for bundles of job results; this one was uploaded"}])
    if "type" not in spec:
        name = bundle["fileName"].lower()
        found = [kind for suffix, kind in TYPES_BY_SUFFIX if name.endswith(suffix)]
        if not found:
            raise bad_request([{"field": "type", "message":
                                f"cannot tell the archive type of {bundle['fileName']!r}: "
                                "give ZIP, TAR or ARC"}])
        spec = {**spec, "type": found[-1]}
    return stored(parse(InputSpec, spec))


async def list_specs(request: web.Request) -> web.Response:
    kind = kind_of(request)
    job = await visible_gate_job(request)
    return respond(request, [VIEWS[kind](request, job, spec) for spec in job[FIELDS[kind]]],
                   FIELDS[kind])


async def add_spec(request: web.Request) -> web.Response:
    kind = kind_of(request)
    await editable(request)
    model = parse(MODELS[kind], await read_fields(request, kind))

    async def add(job: Document) -> tuple[Document, Document]:
        if len(job[FIELDS[kind]]) >= MAX_LISTED:
            raise ApiError(409, f"the job has {MAX_LISTED} {FIELDS[kind]}, as many as a job "
                                "may have")
        spec = {"id": str(job["next_spec"]), **await checked(request, job, kind, stored(model))}
        return await change(request, job, {FIELDS[kind]: [*job[FIELDS[kind]], spec],
                                           "next_spec": job["next_spec"] + 1}), spec

    job, spec = await edit(request, add)
    # The seed's 303 to the new spec's URL; its body is the spec, in the format asked for, so
    # a client that does not follow redirects has it too.
    return respond(request, VIEWS[kind](request, job, spec), kind, status=303,
                   headers={"Location": spec_url(request, job["_id"], kind, spec["id"])})


def find_spec(job: Document, kind: str, spec_id: str) -> Document:
    for spec in job[FIELDS[kind]]:
        if spec["id"] == spec_id:
            return dict(spec)
    raise not_found(f"{kind} {spec_id!r} of job {job['_id']!r}")


async def get_spec(request: web.Request) -> web.Response:
    kind = kind_of(request)
    job = await visible_gate_job(request)
    spec = find_spec(job, kind, request.match_info["spec_id"])
    return respond(request, VIEWS[kind](request, job, spec), kind)


async def change_spec(request: web.Request) -> web.Response:
    """§7.4: the keys given replace the spec's; a key given as null is unset."""
    kind = kind_of(request)
    spec_id = request.match_info["spec_id"]
    find_spec(await editable(request), kind, spec_id)
    fields = await read_fields(request, kind)
    # A spec sent back as it was read names its own id: that is fine, another id is not.
    if "id" in fields and str(fields.pop("id")) != spec_id:
        raise bad_request([{"field": "id", "message": f"is the {kind}'s own id ({spec_id}) "
                                                      "and cannot change"}])
    if "username" in fields and fields["username"] is None:
        fields["password"] = None  # a password without its user means nothing

    async def modify(job: Document) -> tuple[Document, Document]:
        spec = find_spec(job, kind, spec_id)
        merged = {key: value for key, value in {**spec, **fields}.items()
                  if key != "id" and value is not None}
        if kind == "input" and "type" not in fields and "sourceBundle" in fields:
            merged.pop("type", None)
        spec = {"id": spec_id, **await checked(request, job, kind,
                                               stored(parse(MODELS[kind], merged)), spec_id)}
        specs = [spec if other["id"] == spec_id else other for other in job[FIELDS[kind]]]
        return await change(request, job, {FIELDS[kind]: specs}), spec

    job, spec = await edit(request, modify)
    return respond(request, VIEWS[kind](request, job, spec), kind)


async def delete_spec(request: web.Request) -> web.Response:
    kind = kind_of(request)
    spec_id = request.match_info["spec_id"]

    async def remove(job: Document) -> Document:
        find_spec(job, kind, spec_id)
        return await change(request, job, {FIELDS[kind]: [
            other for other in job[FIELDS[kind]] if other["id"] != spec_id]})

    await edit(request, remove)
    return web.Response(status=204)

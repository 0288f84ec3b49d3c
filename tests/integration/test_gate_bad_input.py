"""Bad input to the GATE Cloud-style API: each answers 400 naming the field and why, in JSON
and in XML, and loses nothing already accepted. No backend runs: nothing is started here."""

from __future__ import annotations

import asyncio
import html
from datetime import UTC, datetime
from typing import Any

import pytest

from services.gateway.app import create_app
from shared.settings import Settings
from shared.store import open_store
from tests.conftest import SettingsFactory
from tests.gateapi import GateApi
from tests.platform import Client, make_account


@pytest.fixture
def api_settings(settings_factory: SettingsFactory) -> Settings:
    return settings_factory()


@pytest.fixture(params=[False, True], ids=["json", "xml"])
async def api(request: pytest.FixtureRequest, api_settings: Settings,
              aiohttp_client: Any) -> GateApi:
    client: Client = await aiohttp_client(create_app(api_settings))
    return GateApi(client, await make_account(api_settings), xml=request.param)


async def new_job(api: GateApi) -> str:
    job: str = (await api.ok("POST", "/api/job", "job", {"name": "job"}, status=201))["id"]
    return job


async def new_bundle(api: GateApi, file_name: str = "docs.zip") -> str:
    bundle: str = (await api.ok("POST", "/api/data", "bundle",
                                {"name": "docs", "fileName": file_name}, status=201))["id"]
    return bundle


async def bad(api: GateApi, method: str, path: str, root: str, fields: dict[str, Any],
              field: str, words: str) -> None:
    status, error, _ = await api.call(method, path, root, fields)
    assert status == 400, (path, fields, error)
    errors = error["errors"]
    assert any(e["field"] == field and words in e["message"] for e in errors), errors


BAD_BODIES: list[tuple[str, str, dict[str, Any], str, str]] = [
    ("", "job", {"name": ""}, "name", "must not be blank"),
    ("", "job", {"name": "  \t "}, "name", "must not be blank"),
    ("", "job", {"name": "x", "colour": "red"}, "colour", "Extra inputs"),
    ("/application", "application", {}, "body", "either fileName"),
    ("/application", "application", {"fileName": "a.zip", "s3Location": "s3://b/k"}, "body",
     "either fileName"),
    ("/application", "application", {"fileName": "../a.zip"}, "fileName", "plain file name"),
    ("/application", "application", {"s3Location": "http://b/k"}, "s3Location", "s3://"),
    ("/application", "application", {"s3Location": "s3://bucket/"}, "body", "only a bucket"),
    ("/application", "application", {"s3Location": "s3://b/k.zip", "accessKey": "AKIA"},
     "body", "go together"),
    ("/outputDirectory", "outputDirectory", {"defaultLocation": False}, "body", "either"),
    ("/outputDirectory", "outputDirectory",
     {"defaultLocation": True, "s3Location": "s3://b/p/"}, "body", "either"),
    ("/outputDirectory", "outputDirectory", {"s3Location": "s3://b/p/", "endpoint": "ftp://x"},
     "endpoint", "http"),
    ("/input", "input", {}, "sourceBundle", "Field required"),
    ("/input", "input", {"sourceBundle": "nope"}, "sourceBundle", "no data bundle"),
    ("/input", "input", {"sourceBundle": "B", "type": "RAR"}, "type",
     "'ZIP', 'TAR', 'ARC' or 'RESULTS'"),
    ("/input", "input", {"sourceBundle": "B", "encoding": "klingon-8"}, "encoding",
     "not a character encoding"),
    ("/input", "input", {"sourceBundle": "B", "type": "RESULTS"}, "type",
     "for bundles of job results"),
    ("/input", "input", {"sourceBundle": "B", "encoding": "base64"}, "encoding",
     "not a character encoding"),
    ("/input", "input", {"sourceBundle": "B", "fileExtensions": ",".join(["t"] * 101)},
     "fileExtensions", "at most 100"),
    ("/input", "input", {"sourceBundle": "B", "mimeTypeOverride": "html"}, "mimeTypeOverride",
     "MIME type"),
    ("/input", "input", {"sourceBundle": "B", "type": "ARC", "fileExtensions": "txt"}, "body",
     "use mimeTypes"),
    ("/output", "output", {"type": "PDF"}, "type", "GATE_XML"),
    ("/output", "output", {"annotationSelectors": ":Person, Location"}, "annotationSelectors",
     "'Location' is not an annotation selector"),
    ("/output", "output", {"type": "MIMIR"}, "body", "needs indexUrl"),
    ("/output", "output", {"type": "MIMIR", "indexUrl": "ftp://index"}, "indexUrl", "http"),
    ("/output", "output", {"type": "MIMIR", "indexUrl": "http://i", "password": "p"}, "body",
     "a password needs a username"),
    ("/output", "output", {"type": "JSON", "indexUrl": "http://i"}, "body", "MIMIR outputs only"),
    ("/output", "output", {"fileExtension": "../x"}, "fileExtension", "no '/' or '..'"),
    ("/control", "control", {"action": "explode"}, "action", "'start', 'resume'"),
]


@pytest.mark.parametrize(("suffix", "root", "fields", "field", "words"), BAD_BODIES)
async def test_bad_values_name_the_field(
    api: GateApi, suffix: str, root: str, fields: dict[str, Any], field: str, words: str
) -> None:
    job = await new_job(api)
    if fields.get("sourceBundle") == "B":
        fields = {**fields, "sourceBundle": await new_bundle(api)}
    path = "/api/job" if root == "job" else f"/api/job/{job}{suffix}"
    await bad(api, "POST", path, root, fields, field, words)
    assert await api.state(job) == "RESERVED", "the job is as it was"


@pytest.mark.parametrize(("body", "content_type", "words"), [
    (b"", "application/json", "is empty"),
    (b"{not json", "application/json", "not valid JSON"),
    (b"[1, 2]", "application/json", "must be a JSON object"),
    (b"<job><name>x</job>", "application/xml", "not well-formed XML"),
    (b"<task><name>x</name></task>", "application/xml", "must be a <job> element"),
    (b'<?xml version="1.0"?><!DOCTYPE job [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;">]>'
     b"<job><name>&b;</name></job>", "application/xml", "not well-formed XML"),
    # Deep enough to exhaust Python's recursion limit, and just past the accepted depth.
    (b'{"name": ' + b"[" * 5000 + b"]" * 5000 + b"}", "application/json", "nested deeper"),
    (b'{"name": ' + b"[" * 32 + b"]" * 32 + b"}", "application/json", "nested deeper"),
    (b"<job>" + b"<a>" * 5000 + b"</a>" * 5000 + b"</job>", "application/xml",
     "nested deeper"),
])
async def test_unreadable_bodies_are_400(
    api: GateApi, body: bytes, content_type: str, words: str
) -> None:
    response = await api.client.post("/api/job", data=body, headers={
        **api.headers, "Content-Type": content_type})
    assert response.status == 400
    text = await response.text()
    assert (html.escape(words, quote=False) if api.xml else words) in text, text
    assert await api.ok("GET", "/api/job") == [], "nothing was created"


async def test_a_bad_change_loses_nothing_and_null_unsets(api: GateApi) -> None:
    job = await new_job(api)
    spec = await api.created_spec(job, "output", {
        "type": "JSON", "annotationSelectors": ":Person", "fileExtension": ".people.json"})
    await bad(api, "POST", spec, "output", {"type": "MIMIR"}, "body", "needs indexUrl")
    await bad(api, "POST", spec, "output", {"id": "7"}, "id", "cannot change")
    own_id = spec.rsplit("/", 1)[1]
    assert (await api.ok("POST", spec, "output", {"id": own_id}))["id"] == own_id
    kept = await api.ok("GET", spec)
    assert (kept["type"], kept["annotationSelectors"]) == ("JSON", ":Person")
    changed = await api.ok("POST", spec, "output", {"annotationSelectors": None})
    assert "annotationSelectors" not in changed
    assert changed["fileExtension"] == ".people.json"
    assert "annotationSelectors" not in await api.ok("GET", spec)
    assert (await api.call("DELETE", spec))[0] == 204
    assert (await api.call("GET", spec))[0] == 404
    assert await api.ok("GET", f"/api/job/{job}/output") == []


async def test_unsetting_the_user_unsets_the_password(api: GateApi) -> None:
    """§7.4's own example, `{"username": null}`, on an output that has both."""
    job = await new_job(api)
    spec = await api.created_spec(job, "output", {
        "type": "MIMIR", "indexUrl": "http://index.example/x", "username": "manager",
        "password": "secret"})
    changed = await api.ok("POST", spec, "output", {"username": None})
    assert "username" not in changed
    assert changed["indexUrl"] == "http://index.example/x"


async def test_outputs_may_not_write_the_same_files(api: GateApi) -> None:
    job = await new_job(api)
    await api.created_spec(job, "output", {"type": "JSON"})
    await bad(api, "POST", f"/api/job/{job}/output", "output", {"type": "JSON"},
              "fileExtension", "writes files ending '.json' already")
    other = await api.created_spec(job, "output", {"type": "JSON", "fileExtension": ".p.json"})
    await bad(api, "POST", other, "output", {"fileExtension": ".json"}, "fileExtension",
              "already")
    assert len(await api.ok("GET", f"/api/job/{job}/output")) == 2


async def test_a_job_takes_at_most_100_specs_of_a_kind(api: GateApi) -> None:
    job = await new_job(api)
    for number in range(100):
        await api.created_spec(job, "output", {"type": "JSON", "fileExtension": f".{number}"})
    status, error, _ = await api.call("POST", f"/api/job/{job}/output", "output",
                                      {"type": "JSON", "fileExtension": ".100"})
    assert status == 409
    assert "100 outputs" in error["error"]


async def test_input_type_comes_from_the_file_name(api: GateApi) -> None:
    job = await new_job(api)
    for file_name, kind in (("docs.tar.gz", "TAR"), ("crawl.arc.gz", "ARC"), ("a.ZIP", "ZIP")):
        bundle = await new_bundle(api, file_name)
        # The dashboard's `D-` form of a bundle id is accepted too.
        spec = await api.created_spec(job, "input", {"sourceBundle": f"D-{bundle}"})
        shown = await api.ok("GET", spec)
        assert shown["type"] == kind
        assert shown["sourceBundle"].endswith(f"/api/data/{bundle}")
    await bad(api, "POST", f"/api/job/{job}/input", "input",
              {"sourceBundle": await new_bundle(api, "notes.txt")}, "type", "give ZIP, TAR")


async def test_a_bundle_id_that_starts_with_d_dash_is_found(
    api: GateApi, api_settings: Settings
) -> None:
    """About one random id in 4096 starts with `D-` itself: it is found as it is, and in
    the dashboard's `D-<id>` form too."""
    own = "D-" + (await new_bundle(api))[2:]
    async with open_store(api_settings, "test") as store:
        await store.data_bundles.insert_one({
            "_id": own, "name": "d-dash", "organization_id": api.account.organization_id,
            "kind": "UPLOAD", "prefix": f"data/{own}/", "fileName": "docs.zip",
            "job_id": None, "created": datetime.now(UTC)})
    for path in (f"/api/data/{own}", f"/api/data/D-{own}"):
        assert (await api.ok("GET", path))["id"] == own
    job = await new_job(api)
    spec = await api.created_spec(job, "input", {"sourceBundle": own})
    assert (await api.ok("GET", spec))["sourceBundle"].endswith(f"/api/data/{own}")
    assert (await api.call("DELETE", f"/api/data/{own}"))[0] == 204
    assert (await api.call("GET", f"/api/data/{own}"))[0] == 404


async def test_keys_unset_alone_and_absent_keys_not_shown(api: GateApi) -> None:
    job = await new_job(api)
    renamed = await api.ok("POST", f"/api/job/{job}", "job", {"name": "  padded  "})
    assert renamed["name"] == "padded"
    status, error, _ = await api.call("POST", "/api/data", "bundle",
                                      {"name": " ", "fileName": "docs.zip"})
    assert (status, error["errors"][0]["field"]) == (400, "name")
    spec = await api.created_spec(job, "output", {
        "type": "MIMIR", "indexUrl": "http://mimir.example/index", "username": "manager",
        "password": "secret"})
    changed = await api.ok("POST", spec, "output", {"password": None})
    assert changed["username"] == "manager"
    assert "password" not in changed
    anonymous = await api.ok("POST", f"/api/job/{job}/application", "application",
                             {"s3Location": "s3://public-bucket/app.zip"})
    assert anonymous == {"location": "s3://public-bucket/app.zip"}
    directory = await api.ok("POST", f"/api/job/{job}/outputDirectory", "outputDirectory",
                             {"s3Location": "s3://public-bucket/out/"})
    assert directory == {"s3Location": "s3://public-bucket/out/"}


async def test_changes_at_the_same_time_all_succeed(api: GateApi) -> None:
    """Requests that change one job at once are each applied to what the others left (the
    seed has no 409 for them), and still checked against each other."""
    job = await new_job(api)
    bundle = await new_bundle(api)
    answers = await asyncio.gather(
        *(api.call("POST", f"/api/job/{job}/input", "input", {"sourceBundle": bundle})
          for _ in range(6)),
        *(api.call("POST", f"/api/job/{job}/output", "output",
                   {"type": "JSON", "fileExtension": f".{number}.json"}) for number in range(4)),
        api.call("POST", f"/api/job/{job}", "job", {"name": "renamed"}),
        *(api.call("POST", f"/api/job/{job}/output", "output",
                   {"type": "JSON", "fileExtension": ".same.json"}) for _ in range(2)))
    statuses = [status for status, _, _ in answers]
    assert statuses[:11] == [303] * 10 + [200], answers
    # Two outputs may not write the same files: exactly one of these got in.
    assert sorted(statuses[11:]) == [303, 400], answers
    assert len(await api.ok("GET", f"/api/job/{job}/input")) == 6
    outputs = await api.ok("GET", f"/api/job/{job}/output")
    assert len(outputs) == 5
    ids = [spec["id"] for spec in [*await api.ok("GET", f"/api/job/{job}/input"), *outputs]]
    assert len(set(ids)) == 11, "every spec has its own id"
    assert (await api.ok("GET", f"/api/job/{job}"))["name"] == "renamed"


async def test_bad_state_filter_and_unknown_ids(api: GateApi) -> None:
    status, error, _ = await api.call("GET", "/api/job?state=ACTIVE&state=SLEEPING")
    assert status == 400
    assert error["errors"][0]["field"] == "state"
    assert "SLEEPING" in error["errors"][0]["message"]
    for path in ("/api/job/nope", "/api/job/nope/application", "/api/data/nope"):
        assert (await api.call("GET", path))[0] == 404
    assert (await api.call("DELETE", "/api/data/nope"))[0] == 404
    job = await new_job(api)
    assert (await api.call("GET", f"/api/job/{job}/output/9"))[0] == 404


async def test_the_jobs_api_refuses_the_internal_tool(api: GateApi) -> None:
    """`gate:annotate` reaches storage the GATE API checked; nobody submits it directly."""
    parameters = {
        "application": {"url": "s3://conveyor/gate/u/application/app.zip"},
        "inputs": [{"id": "1", "source": "s3://conveyor/data/b/docs.zip", "type": "ZIP"}],
        "outputs": [{"id": "1", "type": "JSON"}], "output": {"url": "s3://conveyor/gate/u/o/"},
        "report": "s3://conveyor/gate/u/reports/run.json",
    }
    response = await api.client.post("/api/jobs/", json={"tasks": [
        {"tool": "gate:annotate", "parameters": parameters}]}, headers=api.account.headers)
    body = await response.json()
    assert response.status == 400
    assert body["errors"] == [{"field": "tasks.0.tool", "message":
                               "'gate:annotate' runs only through the GATE Cloud API (/api/job)"}]

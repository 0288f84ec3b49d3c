"""The GATE Cloud-style job API end to end (real RabbitMQ, MongoDB-protocol and S3 servers,
the platform's services running): a job's whole life, in JSON and in the seed's XML."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import tarfile
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from minio import Minio

from services.dev.servers import free_port
from services.gateway.app import create_app
from services.gateway.gatecloud.housekeeping import expire_results, settle_ended_runs
from services.gateway.gatecloud.records import SETTLE_GRACE
from services.logger.main import serve as serve_logger
from services.worker.tools.annotate import DOCUMENTS_IN_FLIGHT
from shared.objects import open_objects
from shared.runtime import open_broker
from shared.settings import Settings
from shared.store import open_store
from tests.conftest import SettingsFactory
from tests.gateapi import EXAMPLES, GateApi, api_path, download, upload, zip_folder
from tests.platform import Client, backend, make_account, service

DOCUMENTS = sorted((EXAMPLES / "documents").glob("*.txt"))
FILE_TYPES = {"GATE_XML": ".GATE.xml", "INLINE_XML": ".inline.xml", "XCES": ".xces.xml",
              "JSON": ".json"}
# Every entry of the example's list of people.
PEOPLE = {line.split("\t")[0] for line in
          (EXAMPLES / "application" / "lists" / "people.lst").read_text().splitlines()
          if line.strip() and not line.startswith("#")}


@pytest.fixture
def gate_settings(settings_factory: SettingsFactory) -> Settings:
    return settings_factory(logger_port=free_port(), log_rate_per_minute=10_000,
                            log_rate_per_day=10_000, allow_private_networks=True,
                            gate_price_hour=1.5, gate_price_setup=0.25)


@pytest.fixture
async def client(gate_settings: Settings, aiohttp_client: Any) -> Client:
    gateway: Client = await aiohttp_client(create_app(gate_settings))
    return gateway


@dataclass
class Mimir:
    """A stand-in Mímir index: records each document POSTed and its Authorization."""

    received: list[tuple[str, bytes, str | None]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((request.headers.get("X-Document-Name", ""), await request.read(),
                              request.headers.get("Authorization")))
        return web.Response(status=200)


@pytest.fixture
async def mimir() -> AsyncIterator[tuple[Mimir, str]]:
    index = Mimir()
    app = web.Application()
    app.router.add_post("/index/docs", index.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield index, str(server.make_url("/index/docs"))
    await server.close()


async def configured_job(api: GateApi, name: str, outputs: list[dict[str, Any]]) -> str:
    """A READY job: the example application uploaded, the example documents as a ZIP data
    bundle for its input, and `outputs`."""
    details = await api.ok("POST", "/api/job", "job", {"name": name}, status=201)
    job: str = details["id"]
    assert details["state"] == "RESERVED"
    application = await api.ok("POST", f"/api/job/{job}/application", "application",
                               {"fileName": "people-and-places.zip"})
    await upload(application["putUrl"], zip_folder(EXAMPLES / "application"))
    spec = await api.created_spec(job, "input", {"sourceBundle": await upload_documents(api)})
    assert (await api.ok("GET", spec))["type"] == "ZIP"
    for output in outputs:
        await api.created_spec(job, "output", output)
    return job


async def upload_documents(api: GateApi) -> str:
    """The example documents as a ZIP data bundle; its id."""
    bundle = await api.ok("POST", "/api/data", "bundle",
                          {"name": "examples", "fileName": "documents.zip"}, status=201)
    await upload(bundle["putUrl"], zip_folder(EXAMPLES / "documents"))
    bundle_id: str = bundle["id"]
    return bundle_id


async def wait_state(api: GateApi, job: str, state: str, within: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while (now := await api.state(job)) != state:
        assert asyncio.get_running_loop().time() < deadline, f"job {job} still {now}"
        await asyncio.sleep(0.2)


async def wait_log(api: GateApi, job: str, done: Callable[[list[Any]], bool],
                   within: float = 10.0) -> list[Any]:
    """The job's log once `done` holds for it: its lines arrive through the logger."""
    deadline = asyncio.get_running_loop().time() + within
    while not done(log := await api.ok("GET", f"/api/job/{job}/log")):
        assert asyncio.get_running_loop().time() < deadline, f"log of {job}: {log}"
        await asyncio.sleep(0.1)
    return list(log)


def check_json_output(text: bytes, original: str) -> set[str]:
    """The seed's JSON: the document's text, and entities whose indices slice it."""
    document = json.loads(text)
    assert document["text"] == original
    people = set()
    for kind, entities in document["entities"].items():
        for entity in entities:
            start, end = entity["indices"]
            span = original[start:end]
            assert span, (kind, entity)
            assert span.strip() == span, (kind, entity)
            if kind == "Person":
                assert entity["kind"] == "person"
                people.add(span)
    return people


@pytest.mark.timeout(240)
@pytest.mark.parametrize("xml", [False, True], ids=["json", "xml"])
async def test_whole_life_of_a_job(
    xml: bool, client: Client, gate_settings: Settings, mimir: tuple[Mimir, str]
) -> None:
    index, index_url = mimir
    account = await make_account(gate_settings)
    api = GateApi(client, account, xml)
    outputs: list[dict[str, Any]] = [{"type": kind} for kind in FILE_TYPES]
    outputs[0]["annotationSelectors"] = ":Person, :Location"
    outputs.append({"type": "MIMIR", "indexUrl": index_url, "username": "manager",
                    "password": "s3cret"})
    job = await configured_job(api, "people and places", outputs)
    listed = await api.ok("GET", f"/api/job/{job}/output")
    assert [o["type"] for o in listed] == [*FILE_TYPES, "MIMIR"]
    assert all("password" not in o for o in listed)
    assert await api.state(job) == "READY"

    async with backend(gate_settings):
        assert (await api.control(job, "start"))[0] == 204
        assert await api.state(job) == "ACTIVE"
        await wait_state(api, job, "COMPLETED")
        details = await api.ok("GET", f"/api/job/{job}")
        assert details["name"] == "people and places"
        assert float(details["price"]["hour"]) == 1.5
        assert float(details["timeUsed"]) > 0
        assert int(details["bytesUsed"]) == sum(p.stat().st_size for p in DOCUMENTS)
        assert int(details["bytesCharged"]) == 1024 * 1024
        assert details["dateCompleted"] <= details["resultsAvailableUntil"]

        bundle = await api.ok("GET", api_path(details["resultBundle"]))
        files = {f["name"]: f["url"] for f in bundle["files"]}
        assert set(files) == {p.name + ext for p in DOCUMENTS for ext in FILE_TYPES.values()}
        people: set[str] = set()
        for path in DOCUMENTS:
            people |= check_json_output(await download(files[path.name + ".json"]),
                                        path.read_text())
            standoff = ET.fromstring(await download(files[path.name + ".GATE.xml"]))
            types = {a.get("Type") for a in standoff.iter("Annotation")}
            assert types <= {"Person", "Location"}, "the selectors chose these two"
            ET.fromstring(await download(files[path.name + ".inline.xml"]))
            ET.fromstring(await download(files[path.name + ".xces.xml"]))
        assert {"Ada Lovelace", "Charles Babbage", "Marie Curie"} <= people <= PEOPLE

        assert sorted(name for name, _, _ in index.received) == [p.name for p in DOCUMENTS]
        expected_auth = "Basic " + base64.b64encode(b"manager:s3cret").decode()
        assert {auth for _, _, auth in index.received} == {expected_auth}

        reports = await api.ok("GET", f"/api/job/{job}/reports")
        assert len(reports) == 1
        summary = await api.ok("GET", api_path(reports[0]))
        assert int(summary["documentsProcessed"]) == len(DOCUMENTS)
        assert int(summary["documentsFailed"]) == 0
        assert int(summary["filesWritten"]) == len(DOCUMENTS) * len(FILE_TYPES)

        log = await api.ok("GET", f"/api/job/{job}/log")
        messages = [entry["#text"] if xml else entry["message"] for entry in log]
        assert "run 1 started" in messages
        assert any("documents annotated" in m for m in messages)

        for action in ("start", "stop", "resume"):
            status, error = await api.control(job, action)
            assert status == 409, (action, error)
            assert error["state"] == "COMPLETED"

        # The run is a core job too: it ended when dateCompleted says, and its runs belong
        # to this API (the Jobs API will not restart or resubmit it).
        core = await (await client.get(f"/api/jobs/{job}/", headers=account.headers)).json()
        assert core["finished"] == details["dateCompleted"]
        for action in ("restart", "resubmit"):
            refused = await client.post(f"/api/jobs/{job}/{action}/", headers=account.headers)
            assert refused.status == 409
            assert "/control" in (await refused.json())["error"]

        assert (await api.control(job, "reset"))[0] == 204
        assert await api.state(job) == "READY"
        assert await api.ok("GET", f"/api/job/{job}/reports") == []
        kept = await api.ok("GET", "/api/data")
        assert bundle["id"] in {b["id"] for b in kept}, "reset keeps the result bundle"

        assert (await api.control(job, "start"))[0] == 204
        await wait_state(api, job, "COMPLETED")
        again = await api.ok("GET", f"/api/job/{job}")
        assert again["resultBundle"] != details["resultBundle"]
        assert int(again["bytesUsed"]) == 2 * int(details["bytesUsed"])
        # Deleting the result bundle leaves the job naming none, not a dead link.
        assert (await api.call("DELETE", api_path(again["resultBundle"])))[0] == 204
        assert "resultBundle" not in await api.ok("GET", f"/api/job/{job}")


async def test_application_and_outputs_in_an_own_bucket(
    settings_factory: SettingsFactory, aiohttp_client: Any
) -> None:
    """The application is read from, and the results written to, the user's bucket with the
    user's keys (the secret never shown again); no result bundle is made. The bucket is on
    the platform's own S3 endpoint, which is trusted though private networks are not."""
    gate_settings = settings_factory(logger_port=free_port(), allow_private_networks=False)
    client: Client = await aiohttp_client(create_app(gate_settings))
    own = f"own-{gate_settings.s3_bucket}"
    storage = Minio(gate_settings.s3_host, access_key="AKIAOWNUSER", secret_key="own-secret",
                    secure=False, region=gate_settings.s3_region)
    await asyncio.to_thread(storage.make_bucket, own)
    application = zip_folder(EXAMPLES / "application")
    await asyncio.to_thread(storage.put_object, own, "apps/people.zip",
                            io.BytesIO(application), len(application))
    try:
        api = GateApi(client, await make_account(gate_settings), xml=True)
        job = await configured_job(api, "own bucket", [{"type": "JSON"}])
        shown = await api.ok("POST", f"/api/job/{job}/application", "application",
                             {"s3Location": f"s3://{own}/apps/people.zip",
                              "accessKey": "AKIAOWNUSER", "secretKey": "own-secret"})
        assert shown == {"location": f"s3://{own}/apps/people.zip", "accessKey": "AKIAOWNUSER"}
        directory = await api.ok("POST", f"/api/job/{job}/outputDirectory", "outputDirectory",
                                 {"s3Location": f"s3://{own}/results", "accessKey": "AKIAOWNUSER",
                                  "secretKey": "own-secret"})
        assert directory == {"s3Location": f"s3://{own}/results/", "accessKey": "AKIAOWNUSER"}
        async with backend(gate_settings):
            assert (await api.control(job, "start"))[0] == 204
            await wait_state(api, job, "COMPLETED")
            log = await api.ok("GET", f"/api/job/{job}/log")
            assert any(f"s3://{own}/apps/people.zip" in entry["#text"] for entry in log)
        keys = sorted(o.object_name for o in await asyncio.to_thread(
            lambda: list(storage.list_objects(own, prefix="results/", recursive=True))))
        assert keys == [f"results/{p.name}.json" for p in DOCUMENTS]
        assert "resultBundle" not in await api.ok("GET", f"/api/job/{job}")
        # The run is a job of the core too, its credentials masked there.
        core = await client.get(f"/api/jobs/{job}/", headers=api.account.headers)
        shown = await core.text()
        assert core.status == 200
        assert "gate:annotate" in shown
        assert "own-secret" not in shown
    finally:
        def drop() -> None:
            for obj in storage.list_objects(own, recursive=True):
                storage.remove_object(own, obj.object_name or "")
            storage.remove_bucket(own)

        await asyncio.to_thread(drop)


@pytest.mark.timeout(180)
async def test_stop_aborts_a_running_job_and_keeps_what_it_wrote(
    client: Client, gate_settings: Settings, aiohttp_server: Any
) -> None:
    """A Mímir index that answers slowly keeps the run ACTIVE; stop ends it COMPLETED with the
    files of the documents done so far (more documents than the worker takes at once)."""
    answered = asyncio.Event()
    pause = [1.5]

    async def slow(request: web.Request) -> web.Response:
        await request.read()
        answered.set()
        await asyncio.sleep(pause[0])
        return web.Response()

    app = web.Application()
    app.router.add_post("/slow", slow)
    server = await aiohttp_server(app)
    api = GateApi(client, await make_account(gate_settings), xml=False)
    job = await configured_job(api, "slow", [
        {"type": "JSON"}, {"type": "MIMIR", "indexUrl": str(server.make_url("/slow"))}])
    many = 5 * DOCUMENTS_IN_FLIGHT
    bundle = await api.ok("POST", "/api/data", "bundle",
                          {"name": "many", "fileName": "many.zip"}, status=201)
    await upload(bundle["putUrl"], zip_entries({
        f"doc-{index}.txt": DOCUMENTS[index % len(DOCUMENTS)].read_bytes()
        for index in range(many)}))
    await api.created_spec(job, "input", {"sourceBundle": bundle["id"]})
    assert (await api.call("DELETE", f"/api/job/{job}/input/1"))[0] == 204
    async with backend(gate_settings):
        assert (await api.control(job, "start"))[0] == 204
        await asyncio.wait_for(answered.wait(), 60)
        assert await api.state(job) == "ACTIVE"
        for action in ("start", "resume", "reset"):
            status, error = await api.control(job, action)
            assert (status, error["state"]) == (409, "ACTIVE"), (action, error)
        status, error, _ = await api.call("POST", f"/api/job/{job}/input", "input",
                                          {"sourceBundle": "x"})
        assert status == 409, "no configuration changes while ACTIVE"
        assert (await api.control(job, "stop"))[0] == 204
        await wait_state(api, job, "COMPLETED")
        details = await api.ok("GET", f"/api/job/{job}")
        bundle = await api.ok("GET", api_path(details["resultBundle"]))
        assert 1 <= len(bundle["files"]) < many
        # The stopped worker's last report is what the job was settled with: the documents
        # being sent when it stopped have their JSON files, but were not processed.
        summary = await api.ok("GET", f"/api/job/{job}/reports/summary")
        assert summary["runStatus"] == "Cancelled"
        assert summary["documentsProcessed"] <= len(bundle["files"])
        assert len(bundle["files"]) <= summary["documentsProcessed"] + DOCUMENTS_IN_FLIGHT
        assert summary["bytesUsed"] == summary["bytesRead"] == int(details["bytesUsed"])
        log = await api.ok("GET", f"/api/job/{job}/log")
        assert any("stopped on request" in entry["message"] for entry in log)

        # Reset and start again: the new run is not taken for the stopped one.
        pause[0] = 0.0
        assert (await api.control(job, "reset"))[0] == 204
        assert (await api.control(job, "start"))[0] == 204
        await wait_state(api, job, "COMPLETED")
        summary = await api.ok("GET", f"/api/job/{job}/reports/summary")
        assert (summary["runStatus"], summary["documentsProcessed"]) == ("Completed", many)
        again = await api.ok("GET", f"/api/job/{job}")
        assert len((await api.ok("GET", api_path(again["resultBundle"])))["files"]) == many


async def test_each_action_in_a_wrong_state_is_409(
    client: Client, gate_settings: Settings
) -> None:
    api = GateApi(client, await make_account(gate_settings), xml=False)
    job = (await api.ok("POST", "/api/job", "job", {"name": "empty"}, status=201))["id"]
    status, error = await api.control(job, "start")
    assert status == 409
    assert error["state"] == "RESERVED"
    assert error["validStates"] == ["READY"]
    assert len(error["missing"]) == 3
    assert "application" in error["missing"][0]
    for action, valid in (("stop", "ACTIVE"), ("resume", "SUSPENDED"), ("reset", "COMPLETED")):
        status, error = await api.control(job, action)
        assert (status, error["validStates"]) == (409, [valid])

    assert (await api.call("DELETE", f"/api/job/{job}"))[0] == 204
    assert job not in {j["id"] for j in await api.ok("GET", "/api/job")}
    for action in ("start", "stop", "resume", "reset"):
        status, error = await api.control(job, action)
        assert (status, error["state"]) == (409, "DELETED")

    ready = await configured_job(api, "ready", [{"type": "JSON"}])
    for action in ("stop", "resume", "reset"):
        assert (await api.control(ready, action))[0] == 409
    # An input whose bundle was deleted cannot start.
    bundle = (await api.ok("GET", f"/api/job/{ready}/input/1"))["sourceBundle"]
    assert (await api.call("DELETE", api_path(bundle)))[0] == 204
    status, error = await api.control(ready, "start")
    assert status == 409
    assert "was deleted" in error["error"]
    spec = await api.created_spec(ready, "input", {"sourceBundle": await upload_documents(api)})
    assert (await api.call("DELETE", f"/api/job/{ready}/input/1"))[0] == 204
    assert spec.endswith("/input/3")
    # A READY job whose application was never uploaded cannot start: 409 says so.
    changed = await api.ok("POST", f"/api/job/{ready}/application", "application",
                           {"fileName": "people-and-places"})
    assert changed["uploaded"] is False, "people-and-places.zip is not people-and-places"
    status, error = await api.control(ready, "start")
    assert status == 409
    assert "application" in error["missing"][0]
    assert await api.state(ready) == "READY"


async def test_suspended_job_resumes(client: Client, gate_settings: Settings) -> None:
    """Nothing in Conveyor suspends a job yet (no credit limits); the system's suspension is
    the stored phase, and resume runs the job again from it."""
    from shared.store import open_store

    api = GateApi(client, await make_account(gate_settings), xml=True)
    job = await configured_job(api, "suspended", [{"type": "XCES"}])
    async with open_store(gate_settings, "test") as store:
        await store.gate_jobs.update_one({"_id": job}, {"$set": {"phase": "suspended"}})
    assert await api.state(job) == "SUSPENDED"
    listed = await api.ok("GET", "/api/job")
    assert job not in {j["id"] for j in listed}, "SUSPENDED is not listed by default"
    listed = await api.ok("GET", "/api/job?state=SUSPENDED&state=ACTIVE")
    assert [j["id"] for j in listed] == [job]
    for action in ("start", "stop", "reset"):
        assert (await api.control(job, action))[0] == 409
    async with backend(gate_settings):
        assert (await api.control(job, "resume"))[0] == 204
        await wait_state(api, job, "COMPLETED")


async def test_another_organization_sees_none_of_it(
    client: Client, gate_settings: Settings
) -> None:
    api = GateApi(client, await make_account(gate_settings), xml=False)
    job = await configured_job(api, "private", [{"type": "JSON"}])
    bundle = (await api.ok("GET", "/api/data"))[0]["id"]
    other = GateApi(client, await make_account(gate_settings, "rival", "mallory"), xml=False)
    assert await other.ok("GET", "/api/job") == []
    assert await other.ok("GET", "/api/data") == []
    async with service(serve_logger, gate_settings):
        assert (await api.call("GET", f"/api/job/{job}/log"))[0] == 200
        for method, path in [
            ("GET", f"/api/job/{job}"), ("GET", f"/api/job/{job}/application"),
            ("GET", f"/api/job/{job}/input"), ("GET", f"/api/job/{job}/input/1"),
            ("GET", f"/api/job/{job}/reports"), ("GET", f"/api/job/{job}/log"),
            ("GET", f"/api/data/{bundle}"), ("DELETE", f"/api/data/{bundle}"),
        ]:
            assert (await other.call(method, path))[0] == 404, (method, path)
    assert (await other.control(job, "start"))[0] == 404
    # Nor can it use the bundle as an input of its own job.
    own = (await other.ok("POST", "/api/job", "job", {"name": "mine"}, status=201))["id"]
    status, error, _ = await other.call("POST", f"/api/job/{own}/input", "input",
                                        {"sourceBundle": bundle})
    assert status == 400
    assert error["errors"][0]["field"] == "sourceBundle"


def tar_gz(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def arc_file(records: list[tuple[str, str, bytes]]) -> bytes:
    """An ARC (version 1) file: the version block, then each (url, type, content) record."""
    def record(url: str, kind: str, content: bytes) -> bytes:
        return f"{url} 127.0.0.1 20260101000000 {kind} {len(content)}\n".encode() + content + b"\n"

    version = b"1 0 Conveyor\nURL IP-address Archive-date Content-type Archive-length\n"
    return (record("filedesc://crawl.arc", "text/plain", version)
            + b"".join(record(*item) for item in records))


def zip_entries(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.timeout(180)
async def test_inputs_are_read_as_their_specs_say(client: Client, gate_settings: Settings) -> None:
    """TAR with an encoding and file extensions, ARC with MIME types, and a ZIP whose only
    entry cannot be read: the report says which failed and why."""
    api = GateApi(client, await make_account(gate_settings), xml=False)
    job = await configured_job(api, "inputs", [{"type": "JSON"}])
    await api.ok("DELETE", f"/api/job/{job}/input/1", status=204)
    latin = "Marie Curie left Warsaw for Paris, où elle étudia.".encode("iso-8859-1")
    archives = {
        "docs.tar.gz": (tar_gz({"paris.txt": latin, "page.html": b"<p>Ada Lovelace in "
                                b"<b>London</b></p>", "notes.md": b"Ada"}),
                        {"encoding": "ISO-8859-1", "fileExtensions": "txt, .HTML"}),
        "crawl.arc": (arc_file([
            ("http://example.com/babbage.html", "text/html",
             b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
             b"<html><body>Charles Babbage lived in London.</body></html>"),
            ("http://example.com/logo.png", "image/png", b"\x89PNG\r\n"),
            ("http://example.com/robots.txt", "text/plain", b"Paris"),
        ]), {"mimeTypes": "text/html"}),
        "scans.zip": (zip_entries({"scan.png": b"\x89PNG\r\n"}), {}),
        # The same entry name as in the first input: written beside it, not over it.
        "again.zip": (zip_entries({"paris.txt": b"Ada in Paris"}), {}),
    }
    for file_name, (data, options) in archives.items():
        bundle = await api.ok("POST", "/api/data", "bundle",
                              {"name": file_name, "fileName": file_name}, status=201)
        await upload(bundle["putUrl"], data)
        await api.created_spec(job, "input", {"sourceBundle": bundle["id"], **options})
    assert [i["type"] for i in await api.ok("GET", f"/api/job/{job}/input")] == [
        "TAR", "ARC", "ZIP", "ZIP"]
    async with backend(gate_settings):
        assert (await api.control(job, "start"))[0] == 204
        await wait_state(api, job, "COMPLETED")
        details = await api.ok("GET", f"/api/job/{job}")
        bundle = await api.ok("GET", api_path(details["resultBundle"]))
        files = {f["name"]: f["url"] for f in bundle["files"]}
        assert set(files) == {"paris.txt.json", "page.html.json", "paris.txt~2.json",
                              "http/example.com/babbage.html.json"}
        again = json.loads(await download(files["paris.txt~2.json"]))
        assert again["text"] == "Ada in Paris"
        paris = json.loads(await download(files["paris.txt.json"]))
        assert paris["text"] == latin.decode("iso-8859-1")
        assert [paris["text"][slice(*e["indices"])] for e in paris["entities"]["Location"]] == [
            "Warsaw", "Paris"]
        page = json.loads(await download(files["page.html.json"]))
        assert "<" not in page["text"]
        assert [page["text"][slice(*e["indices"])] for e in page["entities"]["Person"]] == [
            "Ada Lovelace"]
        crawl = json.loads(await download(files["http/example.com/babbage.html.json"]))
        assert "Charles Babbage" in {crawl["text"][slice(*e["indices"])]
                                     for e in crawl["entities"]["Person"]}
        summary = await api.ok("GET", f"/api/job/{job}/reports/summary")
        assert summary["documentsProcessed"] == 4
        assert summary["documentsFailed"] == 1
        assert summary["failures"][0]["document"] == "scan.png"
        assert "image/png" in summary["failures"][0]["reason"]


async def test_a_bad_application_fails_the_run_and_says_why(
    client: Client, gate_settings: Settings
) -> None:
    """The run fails at once (its report, written as it fails, settles it well within the
    grace a lost worker gets), and the summary says why."""
    api = GateApi(client, await make_account(gate_settings), xml=False)
    job = await configured_job(api, "bad application", [{"type": "JSON"}])
    application = await api.ok("GET", f"/api/job/{job}/application")
    await upload(application["putUrl"], zip_entries({"README.txt": b"no pipeline here"}))
    async with backend(gate_settings):
        assert (await api.control(job, "start"))[0] == 204
        await wait_state(api, job, "COMPLETED", within=SETTLE_GRACE.total_seconds() / 2)
        summary = await api.ok("GET", f"/api/job/{job}/reports/summary")
        assert summary["runStatus"] == "Failed"
        assert "pipeline.json" in summary["error"]
        assert summary["documentsProcessed"] == 0


async def test_a_busy_index_is_retried_per_document(
    client: Client, gate_settings: Settings, aiohttp_server: Any
) -> None:
    """A Mímir answer of 503 is tried again for that document; a document it never takes
    fails alone, and the run completes. A retry redoes only the outputs not yet done: the
    file and the other index get each document once."""
    calls: dict[str, int] = {}
    steady_calls: dict[str, int] = {}

    async def flaky(request: web.Request) -> web.Response:
        name = request.headers["X-Document-Name"]
        calls[name] = calls.get(name, 0) + 1
        never = name == DOCUMENTS[0].name
        return web.Response(status=503 if never or calls[name] == 1 else 200)

    async def steady(request: web.Request) -> web.Response:
        name = request.headers["X-Document-Name"]
        steady_calls[name] = steady_calls.get(name, 0) + 1
        return web.Response()

    app = web.Application()
    app.router.add_post("/index", flaky)
    app.router.add_post("/steady", steady)
    server = await aiohttp_server(app)
    api = GateApi(client, await make_account(gate_settings), xml=False)
    job = await configured_job(api, "flaky", [
        {"type": "JSON"}, {"type": "MIMIR", "indexUrl": str(server.make_url("/steady"))},
        {"type": "MIMIR", "indexUrl": str(server.make_url("/index"))}])
    async with backend(gate_settings):
        assert (await api.control(job, "start"))[0] == 204
        await wait_state(api, job, "COMPLETED")
        summary = await api.ok("GET", f"/api/job/{job}/reports/summary")
    assert summary["runStatus"] == "Completed"
    assert summary["documentsIndexed"] == 2 * len(DOCUMENTS) - 1
    assert summary["filesWritten"] == len(DOCUMENTS)
    assert [f["document"] for f in summary["failures"]] == [DOCUMENTS[0].name]
    assert "503" in summary["failures"][0]["reason"]
    assert calls == {path.name: 3 if path == DOCUMENTS[0] else 2 for path in DOCUMENTS}
    assert steady_calls == {path.name: 1 for path in DOCUMENTS}


async def test_a_jobs_results_are_another_jobs_input(
    client: Client, gate_settings: Settings
) -> None:
    """§6: bundles "created automatically as the result of another annotation job" are
    inputs too (type RESULTS): each document once, read back from its output files."""
    api = GateApi(client, await make_account(gate_settings), xml=True)
    first = await configured_job(api, "first", [{"type": "GATE_XML"}, {"type": "JSON"},
                                                 {"type": "XCES"}])
    async with backend(gate_settings):
        assert (await api.control(first, "start"))[0] == 204
        await wait_state(api, first, "COMPLETED")
        results = (await api.ok("GET", f"/api/job/{first}"))["resultBundle"]
        results_id = results.rsplit("/", 1)[1]

        second = (await api.ok("POST", "/api/job", "job", {"name": "second"}, status=201))["id"]
        application = await api.ok("POST", f"/api/job/{second}/application", "application",
                                    {"fileName": "app.zip"})
        await upload(application["putUrl"], zip_folder(EXAMPLES / "application"))
        status, error, _ = await api.call("POST", f"/api/job/{second}/input", "input",
                                          {"sourceBundle": results_id, "type": "ZIP"})
        assert status == 400
        assert error["errors"][0]["field"] == "type"
        spec = await api.created_spec(second, "input", {"sourceBundle": results_id})
        assert (await api.ok("GET", spec))["type"] == "RESULTS"
        await api.created_spec(second, "output", {"type": "JSON",
                                                  "annotationSelectors": ":Location"})
        assert (await api.control(second, "start"))[0] == 204
        await wait_state(api, second, "COMPLETED")
        details = await api.ok("GET", f"/api/job/{second}")
        bundle = await api.ok("GET", api_path(details["resultBundle"]))
        files = {f["name"]: f["url"] for f in bundle["files"]}
        assert set(files) == {p.name + ".json" for p in DOCUMENTS}
        for path in DOCUMENTS:
            document = json.loads(await download(files[path.name + ".json"]))
            assert document["text"] == path.read_text()
            assert set(document["entities"]) <= {"Location"}


async def test_results_are_deleted_after_results_available_until(
    client: Client, gate_settings: Settings, aiohttp_server: Any
) -> None:
    """The sweep deletes a run's RESULT bundle (files too) once `resultsAvailableUntil` has
    passed, not before, and not while another job reads it; uploaded bundles stay."""
    answered = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await request.read()
        answered.set()
        await asyncio.sleep(1.5)
        return web.Response()

    app = web.Application()
    app.router.add_post("/slow", slow)
    index = await aiohttp_server(app)
    api = GateApi(client, await make_account(gate_settings), xml=False)
    first = await configured_job(api, "kept a while", [{"type": "JSON"}])
    kept = timedelta(days=gate_settings.gate_results_days)
    async with backend(gate_settings), open_store(gate_settings, "test") as store, \
            open_objects(gate_settings) as objects, \
            open_broker(gate_settings, "test", 1) as broker:
        publisher = broker.publisher
        assert (await api.control(first, "start"))[0] == 204
        await wait_state(api, first, "COMPLETED")
        details = await api.ok("GET", f"/api/job/{first}")
        until = datetime.fromisoformat(details["resultsAvailableUntil"])
        results_path = api_path(details["resultBundle"])
        files = (await api.ok("GET", results_path))["files"]
        assert len(files) == len(DOCUMENTS)

        early = until - timedelta(minutes=1)
        assert await expire_results(store, objects, publisher, kept, now=early) == [], \
            "deleted before resultsAvailableUntil"

        # A job reading the results (slowly, into a Mímir index) keeps them while ACTIVE.
        reader = (await api.ok("POST", "/api/job", "job", {"name": "reader"}, status=201))["id"]
        application = await api.ok("POST", f"/api/job/{reader}/application", "application",
                                    {"fileName": "app.zip"})
        await upload(application["putUrl"], zip_folder(EXAMPLES / "application"))
        await api.created_spec(reader, "input", {"sourceBundle": results_path.rsplit("/")[-1]})
        await api.created_spec(reader, "output", {"type": "MIMIR",
                                                  "indexUrl": str(index.make_url("/slow"))})
        assert (await api.control(reader, "start"))[0] == 204
        await asyncio.wait_for(answered.wait(), 60)
        later = until + timedelta(minutes=1)
        assert await expire_results(store, objects, publisher, kept, now=later) == []
        assert (await api.call("GET", results_path))[0] == 200
        assert (await api.control(reader, "stop"))[0] == 204
        await wait_state(api, reader, "COMPLETED")

        # Two gateways sweeping at once: one of them deletes and reports each bundle. (The
        # reader's own results, made minutes after, are as due by then.)
        sweeps = await asyncio.gather(expire_results(store, objects, publisher, kept, now=later),
                                      expire_results(store, objects, publisher, kept, now=later))
        reported = [bundle for sweep in sweeps for bundle in sweep]
        assert reported.count(results_path.rsplit("/")[-1]) == 1
        assert len(reported) == len(set(reported))
        assert (await api.call("GET", results_path))[0] == 404
        details = await api.ok("GET", f"/api/job/{first}")
        assert "resultBundle" not in details
        assert datetime.fromisoformat(details["resultsAvailableUntil"]) == until
        async with aiohttp.ClientSession() as session:
            for file in files:
                async with session.get(file["url"]) as response:
                    assert response.status == 404, file["name"]
        # The line reaches the log through the logger, a moment after the sweep.
        log = await wait_log(api, first, lambda log: any("deleted" in e["message"] for e in log))
        assert len([entry for entry in log if "deleted" in entry["message"]]) == 1
        # The documents the job read were uploaded, not results: they stay.
        source = (await api.ok("GET", f"/api/job/{first}/input/1"))["sourceBundle"]
        assert (await api.call("GET", api_path(source)))[0] == 200


async def test_a_run_nobody_reads_is_settled_by_housekeeping(
    client: Client, gate_settings: Settings
) -> None:
    """Usage and results are recorded when a run ends, by the gateway's housekeeping (GETs
    never write), not when its job is next read: the job is not read until settled."""
    api = GateApi(client, await make_account(gate_settings), xml=False)
    job = await configured_job(api, "unread", [{"type": "JSON"}])
    async with backend(gate_settings), open_store(gate_settings, "test") as store, \
            open_objects(gate_settings) as objects:
        assert (await api.control(job, "start"))[0] == 204
        deadline = asyncio.get_running_loop().time() + 60
        while (stored := await store.gate_jobs.find_one({"_id": job})) is None \
                or stored["settled_runs"] != 1:
            assert asyncio.get_running_loop().time() < deadline, "never settled"
            await asyncio.sleep(0.2)
        assert stored["unsettled"] == 0
        assert stored["used_bytes"] == sum(path.stat().st_size for path in DOCUMENTS)
        bundle = await store.data_bundles.find_one({"_id": stored["result_bundle"]})
        assert bundle is not None
        assert len(await objects.list_keys(bundle["prefix"])) == len(DOCUMENTS)
        assert await settle_ended_runs(store, objects) == [], "settled once"
        details = await api.ok("GET", f"/api/job/{job}")
        assert details["state"] == "COMPLETED"
        assert api_path(details["resultBundle"]).endswith(bundle["_id"])
        assert details["bytesUsed"] == stored["used_bytes"]

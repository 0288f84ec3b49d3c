"""The gateway's Jobs API: authentication, every kind of bad input, reads, listing and the
OpenAPI document. No backend runs here: jobs stay Queued."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from services.gateway.app import create_app
from shared.accounts import ensure_account, new_api_key
from shared.settings import Settings
from shared.store import open_store
from tests.conftest import SettingsFactory
from tests.platform import Account, Client, make_account, submit

ClientFactory = Callable[[web.Application], Awaitable[Client]]
GOOD_TASK = {"tool": "debug:sleep", "parameters": {"seconds": 0}}
LIMIT = 4096


@pytest.fixture
def api_settings(settings_factory: SettingsFactory) -> Settings:
    return settings_factory(regions=["local", "aws:eu-central-1"], max_body_bytes=LIMIT)


@pytest.fixture
async def client(api_settings: Settings, aiohttp_client: ClientFactory) -> Client:
    return await aiohttp_client(create_app(api_settings))


@pytest.fixture
async def account(api_settings: Settings) -> Account:
    return await make_account(api_settings)


async def post_job(client: Client, account: Account, body: Any) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await client.post("/api/jobs/", data=data, headers={
        **account.headers, "Content-Type": "application/json"})
    return response.status, await response.json()


HOW = ("send 'Authorization: api-key KEY', or HTTP Basic with the key's id (before the dot) "
       "as user name and the rest as password")
BOTH = 'api-key, Basic realm="conveyor"'  # Basic itself: test_gate_facade.py


@pytest.mark.parametrize(
    ("headers", "message", "challenge"),
    [
        ({}, f"missing Authorization header; {HOW}", BOTH),
        ({"Authorization": "Bearer abc"}, f"unknown Authorization scheme 'Bearer'; {HOW}", BOTH),
        # A refused api-key gets its own challenge only (a browser would ask for a password).
        ({"Authorization": "api-key "}, "'Authorization: api-key' needs the key after it",
         "api-key"),
        ({"Authorization": "api-key nope.nope"}, "invalid API key", "api-key"),
    ],
)
async def test_api_routes_need_a_valid_key(
    client: Client, headers: dict[str, str], message: str, challenge: str
) -> None:
    for method, path in [("GET", "/api/jobs/"), ("POST", "/api/jobs/"), ("GET", "/api/jobs/abc/"),
                         ("POST", "/api/jobs/abc/restart/"), ("HEAD", "/api/jobs/abc/")]:
        response = await client.request(method, path, headers=headers)
        assert response.status == 401, (method, path)
        if method != "HEAD":
            assert (await response.json())["error"] == message
        assert response.headers["WWW-Authenticate"] == challenge


async def test_revoked_key_is_refused(api_settings: Settings, client: Client) -> None:
    account = await make_account(api_settings)
    async with open_store(api_settings, "test") as store:
        await store.api_keys.update_one({}, {"$set": {"revoked": "by test"}})
    response = await client.get("/api/jobs/", headers=account.headers)
    assert response.status == 401
    assert (await response.json())["error"] == "API key revoked"


async def test_submit_answers_the_job_as_get_does(client: Client, account: Account) -> None:
    job = await submit(client, account, {"tasks": [GOOD_TASK], "tags": ["a", "b"],
                                         "region": "aws:eu-central-1"})
    assert re.fullmatch(r"[A-Za-z0-9_-]{11}", job["id"])
    read = await client.get(f"/api/jobs/{job['id']}/", headers=account.headers)
    assert await read.json() == job
    for field in ("id", "url", "tasks", "notify", "organization", "organization_id", "user",
                  "status", "status_text", "created", "modified", "project_offer",
                  "purchase_order", "purchase_order_id", "job_bundle", "job_bundle_id", "tags",
                  "region", "role_arn"):
        assert field in job
    assert job["url"].endswith(f"/api/jobs/{job['id']}/")
    assert (job["status"], job["status_text"], job["region"]) == (0, "Queued",
                                                                  "aws:eu-central-1")
    assert (job["organization"], job["user"]) == ("acme", "alice")
    task = job["tasks"][0]
    assert (task["id"], task["tool"], task["status_text"], task["attempts"]) == (
        1, "debug:sleep", "Queued", 0)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", job["created"])


async def test_default_region_is_used(client: Client, account: Account) -> None:
    job = await submit(client, account, {"tasks": [GOOD_TASK]})
    assert job["region"] == "local"


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        (b"{not json", "body", "is not valid JSON"),
        (b'{"tasks": ' + b"[" * 1900 + b"]" * 1900 + b"}", "body", "nested deeper than 32"),
        (b"", "body", "is empty"),
        ([1, 2], "body", "must be a JSON object"),
        ({}, "tasks", "Field required"),
        ({"tasks": []}, "tasks", "at least 1 item"),
        ({"tasks": "x"}, "tasks", "valid list"),
        ({"tasks": [{"tool": "media:nothing"}]}, "tasks.0.tool", "unknown tool 'media:nothing'"),
        ({"tasks": [{"tool": "no colon"}]}, "tasks.0.tool", "namespace:name"),
        ({"tasks": [{"parameters": {}}]}, "tasks.0.tool", "Field required"),
        ({"tasks": [{"tool": "storage:get", "parameters": {}}]},
         "tasks.0.parameters.source", "Field required"),
        ({"tasks": [{"tool": "storage:get", "parameters": {"source": "ftp://x/y"}}]},
         "tasks.0.parameters.source", "http://, https:// or s3://"),
        ({"tasks": [{"tool": "storage:get", "parameters": {"source": "https://x/y",
                                                          "destination": "../etc/passwd"}}]},
         "tasks.0.parameters.destination", "'..'"),
        ({"tasks": [{"tool": "storage:put", "parameters": {"source": "/abs"}}]},
         "tasks.0.parameters.source", "relative path"),
        ({"tasks": [{"tool": "debug:sleep", "parameters": {"seconds": "soon"}}]},
         "tasks.0.parameters.seconds", "valid number"),
        ({"tasks": [{"tool": "debug:sleep", "parameters": {"seconds": -1}}]},
         "tasks.0.parameters.seconds", "greater than or equal to 0"),
        ({"tasks": [{"tool": "debug:sleep", "parameters": {"sleep": 1}}]},
         "tasks.0.parameters.sleep", "Extra inputs are not permitted"),
        ({"tasks": [GOOD_TASK], "tags": "x"}, "tags", "valid list"),
        ({"tasks": [GOOD_TASK], "region": "mars"}, "region",
         "unknown region 'mars'; known regions: local, aws:eu-central-1"),
        ({"tasks": [GOOD_TASK], "notify": "ftp://hook"}, "notify", "http:// or https://"),
        ({"tasks": [GOOD_TASK], "colour": "red"}, "colour", "Extra inputs are not permitted"),
        ({"tasks": [GOOD_TASK], "job_bundle": "missing"}, "job_bundle", "no such job bundle"),
    ],
)
async def test_bad_jobs_get_400_naming_the_field(
    client: Client, account: Account, body: Any, field: str, fragment: str
) -> None:
    status, answer = await post_job(client, account, body)
    assert status == 400, answer
    matching = [e for e in answer["errors"] if e["field"] == field]
    assert matching, answer
    assert fragment in matching[0]["message"], answer


async def test_body_over_the_limit_is_413(client: Client, account: Account) -> None:
    big = {"tasks": [{"tool": "debug:log", "parameters": {"messages": ["x" * LIMIT]}}]}
    status, answer = await post_job(client, account, big)
    assert status == 413
    assert answer["error"] == f"request body too large (limit {LIMIT} bytes)"


async def test_nothing_accepted_is_lost_after_bad_input(
    client: Client, account: Account
) -> None:
    job = await submit(client, account, {"tasks": [GOOD_TASK]})
    assert (await post_job(client, account, {"tasks": []}))[0] == 400
    listed = await (await client.get("/api/jobs/", headers=account.headers)).json()
    assert [j["id"] for j in listed["results"]] == [job["id"]]


@pytest.mark.parametrize(
    "body",
    [b"null", b"0", b'"text"', b"[]", b'{"tasks": null}', b'{"tasks": [null]}',
     b'{"tasks": [[]]}', b'{"tasks": [{"tool": 5}]}', b'{"tasks": [{"tool": "a:b", '
     b'"parameters": [null]}]}', b'{"tasks": [{"tool": "a:b", "parameters": [{"name": 1, '
     b'"value": 2}]}]}', b'{"tasks": [{"tool": "storage:get", "parameters": {"source": '
     b'"https://x", "credentials": "key"}}]}', "{\"tasks\": [\"\u2603\"]}".encode(),
     b"\xff\xfe", b'{"tasks": [{"tool": "debug:sleep", "parameters": {"seconds": 1e400}}]}',
     b'{"tasks": [{"tool": "debug:sleep"}], "organization_id": {"$ne": 1}}',
     b'[' * 200 + b']' * 200],
)
async def test_no_input_gives_a_server_error(
    client: Client, account: Account, body: bytes
) -> None:
    status, answer = await post_job(client, account, body)
    assert 400 <= status < 500, answer
    assert answer["error"]


async def test_unknown_job_is_404(client: Client, account: Account) -> None:
    for method, path in [("GET", "/api/jobs/nosuchjob00/"),
                         ("POST", "/api/jobs/nosuchjob00/restart/"),
                         ("POST", "/api/jobs/nosuchjob00/resubmit/")]:
        response = await client.request(method, path, headers=account.headers)
        assert response.status == 404
        assert "not found" in (await response.json())["error"]


async def test_another_organizations_job_is_404(
    api_settings: Settings, client: Client, account: Account
) -> None:
    job = await submit(client, account, {"tasks": [GOOD_TASK]})
    stranger = await make_account(api_settings, organization="globex", user="bob")
    response = await client.get(f"/api/jobs/{job['id']}/", headers=stranger.headers)
    assert response.status == 404
    listed = await (await client.get("/api/jobs/", headers=stranger.headers)).json()
    assert listed["count"] == 0


async def test_organization_choice(api_settings: Settings, client: Client) -> None:
    key = new_api_key()
    async with open_store(api_settings, "test") as store:
        first = await ensure_account(store, "one", "multi", key, roles=[])
        second = await ensure_account(store, "two", "other", new_api_key(), roles=[])
        memberships = [*first["user"]["memberships"],
                       {"organization_id": second["organization"]["_id"], "roles": []}]
        await store.users.update_one({"_id": first["user"]["_id"]},
                                     {"$set": {"memberships": memberships}})
    headers = {"Authorization": f"api-key {key}"}
    ambiguous = await client.post("/api/jobs/", json={"tasks": [GOOD_TASK]}, headers=headers)
    assert ambiguous.status == 400
    assert "several organizations" in (await ambiguous.json())["errors"][0]["message"]
    by_name = await client.post("/api/jobs/", json={"tasks": [GOOD_TASK],
                                                    "organization": "two"}, headers=headers)
    assert (await by_name.json())["organization"] == "two"
    foreign = await client.post("/api/jobs/", json={"tasks": [GOOD_TASK],
                                                    "organization": "three"}, headers=headers)
    assert foreign.status == 403


async def test_listing_is_newest_first_paginated_and_filtered(
    client: Client, account: Account
) -> None:
    ids = [(await submit(client, account, {"tasks": [GOOD_TASK], "tags": [f"t{i % 2}"]}))["id"]
           for i in range(5)]
    page1 = await (await client.get("/api/jobs/?page_size=2", headers=account.headers)).json()
    assert page1["count"] == 5
    assert [j["id"] for j in page1["results"]] == ids[::-1][:2]
    assert page1["previous"] is None
    assert "page=2" in page1["next"]
    page3 = await (await client.get("/api/jobs/?page_size=2&page=3",
                                    headers=account.headers)).json()
    assert [j["id"] for j in page3["results"]] == [ids[0]]
    assert page3["next"] is None
    tagged = await (await client.get("/api/jobs/?tag=t1", headers=account.headers)).json()
    assert {j["id"] for j in tagged["results"]} == {ids[1], ids[3]}
    queued = await (await client.get("/api/jobs/?status=Queued", headers=account.headers)).json()
    assert queued["count"] == 5
    done = await (await client.get("/api/jobs/?status=2", headers=account.headers)).json()
    assert done["count"] == 0


@pytest.mark.parametrize(
    ("query", "field"),
    [("status=finished", "status"), ("page=0", "page"), ("page_size=500", "page_size"),
     ("page_size=x", "page_size")],
)
async def test_bad_list_parameters_are_400(
    client: Client, account: Account, query: str, field: str
) -> None:
    response = await client.get(f"/api/jobs/?{query}", headers=account.headers)
    body = await response.json()
    assert response.status == 400
    assert body["errors"][0]["field"] == field


async def test_routes_without_trailing_slash_work_too(
    client: Client, account: Account
) -> None:
    job = await submit(client, account, {"tasks": [GOOD_TASK]})
    response = await client.get(f"/api/jobs/{job['id']}", headers=account.headers)
    assert (await response.json())["id"] == job["id"]


async def test_openapi_document_lists_every_registered_route(client: Client) -> None:
    response = await client.get("/api/openapi.json")
    document = await response.json()
    assert document["openapi"].startswith("3.1")
    documented = {(method.upper(), path) for path, item in document["paths"].items()
                  for method in item}
    registered = {
        (route.method, route.resource.canonical)
        for route in client.app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith(("/api/", "/job_bundle"))
        and route.method not in {"HEAD", "OPTIONS"}
    }
    twins = {(method, path) for method, path in registered if (method, path) not in documented
             and {(method, path + "/"), (method, path.rstrip("/"))} & documented}
    assert twins
    assert documented == registered - twins - {("GET", "/api/openapi.json")}
    for path, item in document["paths"].items():
        for operation in item.values():
            for ref in re.findall(r'"\$ref": "#/components/schemas/([^"]+)"',
                                  json.dumps(operation)):
                assert ref in document["components"]["schemas"], (path, ref)
    assert "storage.get.parameters" in document["components"]["schemas"]

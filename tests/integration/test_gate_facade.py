"""What GATE Cloud's own clients need of the facade (issue 16, point 5): HTTP Basic with the
API key's id and secret, a trailing slash on every `/api/job…` and `/api/data…` route, 303 and
404 bodies in the format asked for, and errors naming the fields the routes take."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from services.dev.servers import free_port
from services.gateway.app import create_app
from services.gateway.routes import ROUTES
from services.logger.main import serve as serve_logger
from shared.accounts import ensure_account, new_api_key
from shared.settings import Settings
from shared.store import open_store
from tests.conftest import SettingsFactory
from tests.gateapi import GateApi, api_path
from tests.platform import Account, Client, make_account, service

BOTH = 'api-key, Basic realm="conveyor"'
# The facade's routes (`/api/jobs/` and `/api/job_bundle/` had both forms before).
GATE_ROUTES = [route for route in ROUTES
               if re.match(r"/api/(job|data)(/|$)", route.path) and not route.path.endswith("/")]


@pytest.fixture
def facade_settings(settings_factory: SettingsFactory) -> Settings:
    return settings_factory(logger_port=free_port(), log_rate_per_minute=10_000,
                            log_rate_per_day=10_000)


@pytest.fixture
async def client(facade_settings: Settings, aiohttp_client: Any) -> AsyncIterator[Client]:
    gateway: Client = await aiohttp_client(create_app(facade_settings))
    async with service(serve_logger, facade_settings):
        yield gateway


@pytest.fixture
async def account(facade_settings: Settings) -> Account:
    return await make_account(facade_settings)


def basic(credentials: bytes) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials).decode()}


async def test_basic_auth_takes_the_key_id_as_user_and_the_secret_as_password(
    client: Client, account: Account
) -> None:
    key_id, secret = account.key.split(".", 1)
    # As a client library sends it.
    header = {"Authorization": aiohttp.encode_basic_auth(key_id, secret)}
    job = (await (await client.post("/api/job", json={"name": "j"}, headers=header)).json())["id"]
    # Every route group takes it: the Jobs API, the facade, and the logs the logger serves.
    for path in ("/api/jobs/", "/api/job", f"/api/job/{job}", f"/api/job/{job}/log",
                 "/api/data", "/api/me"):
        response = await client.get(path, headers=basic(f"{key_id}:{secret}".encode()))
        assert response.status == 200, (path, await response.text())
    assert (await (await client.get("/api/me", headers=header)).json())["user"] == account.user
    document = await (await client.get("/api/openapi.json")).json()
    assert {"basic": []} in document["security"]
    assert document["components"]["securitySchemes"]["basic"]["scheme"] == "basic"


@pytest.mark.parametrize(("credentials", "message"), [
    (b"KEYID:wrong", "invalid API key"),
    (b"KEYID:", "Basic credentials without a password (the key's secret)"),
    (b":SECRET", "Basic credentials without a user name (the key's id)"),
    (b"KEYID", "Basic credentials must be the base64 (UTF-8) of 'KEY_ID:SECRET'"),
    (b"\xff\xfe:\xff", "Basic credentials must be the base64 (UTF-8) of 'KEY_ID:SECRET'"),
    (b"KEYID.SECRET:", "Basic credentials without a password (the key's secret)"),
    (b"SECRET:KEYID", "invalid API key"),
], ids=["wrong-password", "no-password", "no-user", "no-colon", "not-utf8",
        "whole-key-as-user", "swapped"])
async def test_bad_basic_credentials_are_401_with_both_challenges(
    client: Client, account: Account, credentials: bytes, message: str
) -> None:
    key_id, secret = account.key.split(".", 1)
    given = credentials.replace(b"KEYID", key_id.encode()).replace(b"SECRET", secret.encode())
    for path in ("/api/job", "/api/jobs/", "/api/job/x/log"):
        response = await client.get(path, headers=basic(given))
        assert response.status == 401, (path, given)
        assert (await response.json())["error"] == message, path
        assert response.headers["WWW-Authenticate"] == BOTH


@pytest.mark.parametrize("header", ["Basic !!not-base64!!", "Basic", "Basic ", "basic  abc",
                                    "Basic é"])
async def test_malformed_basic_headers_are_401(client: Client, header: str) -> None:
    response = await client.get("/api/job", headers={"Authorization": header})
    assert response.status == 401
    assert (await response.json())["error"] == \
        "Basic credentials must be the base64 (UTF-8) of 'KEY_ID:SECRET'"
    assert response.headers["WWW-Authenticate"] == BOTH


async def test_revoked_key_is_refused_over_basic(
    client: Client, account: Account, facade_settings: Settings
) -> None:
    async with open_store(facade_settings, "test") as store:
        await store.api_keys.update_one({}, {"$set": {"revoked": "by test"}})
    response = await client.get("/api/job", headers={
        "Authorization": aiohttp.encode_basic_auth(*account.key.split(".", 1))})
    assert (response.status, (await response.json())["error"]) == (401, "API key revoked")


async def test_every_facade_route_answers_with_a_trailing_slash_too(
    client: Client, account: Account
) -> None:
    api = GateApi(client, account, xml=False)
    job = (await api.ok("POST", "/api/job/", "job", {"name": "slashed"}, status=201))["id"]
    bundle = (await api.ok("POST", "/api/data/", "bundle",
                           {"name": "docs", "fileName": "docs.zip"}, status=201))["id"]
    spec = api_path((await api.call("POST", f"/api/job/{job}/input/", "input",
                                    {"sourceBundle": bundle}))[2]["Location"])
    ids = {"job_id": job, "bundle_id": bundle, "spec_id": spec.rsplit("/", 1)[1]}
    assert len(GATE_ROUTES) > 25
    for route in GATE_ROUTES:
        # Reads see what exists; changes get an empty body (400) or a missing id (404):
        # either way the handler answers, not the router.
        path = route.path
        for name, value in ids.items():
            path = path.replace(f"{{{name}}}", "nope" if route.method == "DELETE" else value)
        answers = []
        for each in (path.rstrip("/"), path.rstrip("/") + "/"):
            response = await client.request(route.method, each, headers=account.headers,
                                            data=b"", allow_redirects=False)
            body = await response.json() if response.status >= 400 else None
            assert body is None or body["error"] not in {"Not Found", "Method Not Allowed"}, \
                (route.method, each, body)
            answers.append((response.status, body))
        assert answers[0] == answers[1], (route.method, path, answers)


@pytest.mark.parametrize("xml", [False, True], ids=["json", "xml"])
async def test_303_and_404_answer_in_the_format_asked_for(
    client: Client, account: Account, xml: bool
) -> None:
    api = GateApi(client, account, xml=xml)
    job = (await api.ok("POST", "/api/job", "job", {"name": "j"}, status=201))["id"]
    bundle = (await api.ok("POST", "/api/data", "bundle",
                           {"name": "docs", "fileName": "docs.tar"}, status=201))["id"]
    for kind, fields, shown in (("input", {"sourceBundle": bundle}, "TAR"),
                                ("output", {"type": "JSON"}, "JSON")):
        # GateApi refuses an answer in the other format, so reading it checks the format.
        status, created, headers = await api.call("POST", f"/api/job/{job}/{kind}", kind, fields)
        assert status == 303, created
        assert headers["Content-Type"].startswith("application/xml" if xml else
                                                  "application/json")
        assert created["url"] == headers["Location"]
        assert created["type"] == shown
        assert created == await api.ok("GET", api_path(headers["Location"]))
    for path, message in ((f"/api/job/{job}/nothing", "Not Found"),
                          ("/api/job/nope", "job 'nope' not found"),
                          (f"/api/job/{job}/output/99", f"output '99' of job '{job}' not found"),
                          ("/api/data/nope", "data bundle 'nope' not found"),
                          ("/api/job/nope/log", "job 'nope' not found")):
        status, error, headers = await api.call("GET", path)
        assert status == 404, path
        assert headers["Content-Type"].startswith("application/xml" if xml else
                                                  "application/json"), path
        assert error["error"] == message
        assert str(error["status"]) == "404"


async def two_organization_account(settings: Settings) -> Account:
    key = new_api_key()
    async with open_store(settings, "test") as store:
        first = await ensure_account(store, "one", "multi", key, roles=["CONFIG"])
        second = await ensure_account(store, "two", "other", new_api_key(), roles=[])
        memberships = [*first["user"]["memberships"],
                       {"organization_id": second["organization"]["_id"], "roles": ["CONFIG"]}]
        await store.users.update_one({"_id": first["user"]["_id"]},
                                     {"$set": {"memberships": memberships}})
    return Account(key, first["organization"]["_id"], "one", "multi")


@pytest.mark.parametrize("xml", [False, True], ids=["json", "xml"])
async def test_a_user_of_several_organizations_is_told_the_field_to_name_one_by(
    client: Client, facade_settings: Settings, xml: bool
) -> None:
    api = GateApi(client, await two_organization_account(facade_settings), xml=xml)
    for path, root, fields in (("/api/job", "job", {"name": "j"}),
                               ("/api/data", "bundle", {"name": "d", "fileName": "d.zip"})):
        status, error, _ = await api.call("POST", path, root, fields)
        assert status == 400, error
        assert error["errors"] == [{"field": "organization", "message":
                                    "you belong to several organizations (one, two): name one"}]
        # The field it names is the one the route takes.
        created = await api.ok("POST", path, root, {**fields, "organization": "two"},
                               status=201)
        assert created["id"]
    # The seed's job bundles take `organization_name`, and their error says so.
    response = await client.post("/job_bundle/", json={"name": "b"},
                                 headers=api.account.headers)
    assert (await response.json())["errors"][0]["field"] == "organization_name"

"""Tenancy: the admin commands, organizations and roles, job bundles, and isolation of every
job route between organizations."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from typing import Any

import pytest

from services.admin import main as admin_main
from services.cli import build_parser
from services.dev.servers import free_port
from services.gateway.app import create_app
from services.logger.main import serve as serve_logger
from shared.settings import Settings, to_env_lines
from tests.conftest import SettingsFactory
from tests.platform import Account, Client, backend, service, submit, wait_job

GOOD_TASK = {"tool": "debug:sleep", "parameters": {"seconds": 0}}


async def admin(settings: Settings, *argv: str) -> tuple[int, list[str], str]:
    """`conveyor admin ARGV` in a thread of this process; (exit code, stdout lines, stderr)."""
    args = build_parser().parse_args(["admin", *argv])
    out, err = io.StringIO(), io.StringIO()

    code = await asyncio.to_thread(admin_main, settings, args, out, err)
    return code, out.getvalue().splitlines(), err.getvalue()


async def make_user(settings: Settings, org: str, user: str, *roles: str) -> Account:
    code, _, _ = await admin(settings, "create-org", org)
    role_text = f":{','.join(roles)}" if roles else ""
    code, lines, err = await admin(settings, "create-user", user, "--org", f"{org}{role_text}")
    assert code == 0, err
    code, lines, err = await admin(settings, "create-key", user)
    assert code == 0, err
    return Account(lines[-1], "", org, user)


@pytest.fixture
def tenancy_settings(settings_factory: SettingsFactory) -> Settings:
    return settings_factory(logger_port=free_port())


@pytest.fixture
async def client(tenancy_settings: Settings, aiohttp_client: Any) -> Client:
    gateway: Client = await aiohttp_client(create_app(tenancy_settings))
    return gateway


async def test_admin_commands_end_to_end(
    tenancy_settings: Settings, client: Client, tmp_path: Any
) -> None:
    settings = tenancy_settings
    code, lines, _ = await admin(settings, "create-org", "acme")
    assert code == 0
    org_id = lines[-1]
    assert len(org_id) == 16
    code, lines, _ = await admin(settings, "create-user", "alice", "--org", "acme:config")
    assert code == 0
    user_id = lines[-1]
    code, lines, _ = await admin(settings, "create-key", "alice")
    key = lines[-1]
    prefix = key.split(".")[0]
    headers = {"Authorization": f"api-key {key}"}
    job = await (await client.post("/api/jobs/", json={"tasks": [GOOD_TASK]},
                                   headers=headers)).json()
    assert (job["organization"], job["organization_id"], job["user"]) == ("acme", org_id,
                                                                          "alice")
    assert (await admin(settings, "list", "orgs"))[1] == [f"{org_id}  acme"]
    assert (await admin(settings, "list", "users"))[1] == [f"{user_id}  alice  acme:CONFIG"]
    keys = (await admin(settings, "list", "keys"))[1]
    assert keys[0].startswith(f"{prefix}  alice  created ")
    assert "last used 20" in keys[0]  # recorded by the call above
    assert keys[0].endswith("active")

    code, lines, _ = await admin(settings, "revoke-key", prefix)
    assert code == 0
    assert lines[-1].startswith(f"revoked {prefix} at 20")
    refused = await client.get("/api/jobs/", headers=headers)
    assert refused.status == 401
    assert (await refused.json())["error"] == "API key revoked"
    assert "revoked 20" in (await admin(settings, "list", "keys"))[1][0]

    # The real command, with --env-file after the subcommand.
    env_file = tmp_path / "conveyor.env"
    env_file.write_text("\n".join(to_env_lines(settings)) + "\n")
    result = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "services.cli", "admin", "list", "orgs",
                         "--env-file", str(env_file)],
        capture_output=True, text=True, check=False, env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == f"{org_id}  acme"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["create-user", "bob", "--org", "nowhere"], "no organization named 'nowhere'"),
        (["create-user", "bob", "--org", "acme:OWNER"], "unknown role OWNER in --org"),
        (["create-user", "bob", "--org", ":CONFIG"], "--org ':CONFIG' names no organization"),
        (["create-user", "alice", "--org", "acme"], "a user named 'alice' exists already"),
        (["create-org", "acme"], "an organization named 'acme' exists already"),
        (["create-org", "bad/name"], "organization name 'bad/name' must be"),
        (["create-key", "nobody"], "no user named 'nobody'"),
        (["revoke-key", "nokey"], "no API key with prefix 'nokey'"),
    ],
)
async def test_bad_admin_input_is_one_clear_line_and_nonzero(
    tenancy_settings: Settings, argv: list[str], message: str
) -> None:
    await make_user(tenancy_settings, "acme", "alice")
    code, lines, err = await admin(tenancy_settings, *argv)
    assert code == 1
    assert lines == []
    assert err.startswith(f"conveyor admin: {message}")
    assert err.count("\n") == 1


def test_admin_usage_errors_exit_2() -> None:
    for argv in (["admin", "list", "things"], ["admin", "create-user", "bob"], ["admin"]):
        with pytest.raises(SystemExit) as caught:
            build_parser().parse_args(argv)
        assert caught.value.code == 2


async def test_user_in_several_organizations(tenancy_settings: Settings, client: Client) -> None:
    settings = tenancy_settings
    for org in ("one", "two", "three"):
        await admin(settings, "create-org", org)
    await admin(settings, "create-user", "multi", "--org", "one", "--org", "two:CONFIG")
    key = (await admin(settings, "create-key", "multi"))[1][-1]
    orgs = {line.split("  ")[1]: line.split("  ")[0]
            for line in (await admin(settings, "list", "orgs"))[1]}
    headers = {"Authorization": f"api-key {key}"}

    async def post(extra: dict[str, Any]) -> tuple[int, Any]:
        response = await client.post("/api/jobs/", json={"tasks": [GOOD_TASK], **extra},
                                     headers=headers)
        return response.status, await response.json()

    status, body = await post({})
    assert status == 400
    assert body["errors"][0]["field"] == "organization_id"
    status, body = await post({"organization_id": orgs["two"]})
    assert (status, body["organization"], body["organization_id"]) == (201, "two", orgs["two"])
    status, body = await post({"organization": "one"})
    assert (status, body["organization"], body["user"]) == (201, "one", "multi")
    assert (await post({"organization": "three"}))[0] == 403
    assert (await post({"organization_id": orgs["three"]}))[0] == 403
    assert (await post({"organization_id": "doesnotexist"}))[0] == 403


async def test_job_bundles(tenancy_settings: Settings, client: Client) -> None:
    settings = tenancy_settings
    config = await make_user(settings, "acme", "alice", "CONFIG")
    await admin(settings, "create-user", "plain", "--org", "acme")
    plain = Account((await admin(settings, "create-key", "plain"))[1][-1], "", "acme", "plain")
    other = await make_user(settings, "globex", "bob", "CONFIG")

    async def create(who: Account, body: Any, prefix: str = "") -> tuple[int, Any]:
        response = await client.post(f"{prefix}/job_bundle/", json=body, headers=who.headers)
        return response.status, await response.json()

    status, bundle = await create(config, {"name": "2017-03-Encodings",
                                           "organization_name": "acme"})
    assert status == 201
    assert set(bundle) >= {"id", "name", "organization"}
    assert (bundle["name"], bundle["organization"]) == ("2017-03-Encodings", "acme")
    assert (await create(config, {"name": "Metropolis", "organization_name": "acme"},
                         prefix="/api"))[0] == 201
    assert (await create(config, {"name": "Metropolis", "organization_name": "acme"}))[0] == 409
    status, body = await create(plain, {"name": "x", "organization_name": "acme"})
    assert status == 403
    assert "CONFIG role" in body["error"]
    assert (await create(config, {"name": "x", "organization_name": "globex"}))[0] == 403
    assert (await create(config, {"organization_name": "acme"}))[0] == 400
    assert (await create(config, {"name": "", "organization_name": "acme"}))[0] == 400
    status, body = await create(config, {"name": "   ", "organization_name": "acme"})
    assert status == 400
    assert body["errors"][0]["field"] == "name"
    assert "must not be blank" in body["errors"][0]["message"]
    # Names are kept without the spaces around them, so this one is taken.
    assert (await create(config, {"name": "  Metropolis ", "organization_name": "acme"}))[0] \
        == 409
    assert (await client.post("/job_bundle/", json={"name": "x"})).status == 401

    async def names(who: Account, query: str = "", prefix: str = "") -> list[str]:
        response = await client.get(f"{prefix}/job_bundle/{query}", headers=who.headers)
        assert response.status == 200
        return [b["name"] for b in await response.json()]

    assert await names(plain) == ["2017-03-Encodings", "Metropolis"]
    assert await names(plain, "?search=encod", prefix="/api") == ["2017-03-Encodings"]
    assert await names(plain, "?name=Metropolis") == ["Metropolis"]
    assert await names(plain, "?name=Metro") == []
    assert await names(other) == []

    by_id = await submit(client, config, {"tasks": [GOOD_TASK], "job_bundle_id": bundle["id"]})
    by_name = await submit(client, config, {"tasks": [GOOD_TASK], "job_bundle": "Metropolis"})
    await submit(client, config, {"tasks": [GOOD_TASK]})
    assert (by_id["job_bundle"], by_id["job_bundle_id"]) == ("2017-03-Encodings", bundle["id"])
    assert by_name["job_bundle"] == "Metropolis"
    listed = await (await client.get(f"/api/jobs/?job_bundle_id={bundle['id']}",
                                     headers=config.headers)).json()
    assert [j["id"] for j in listed["results"]] == [by_id["id"]]
    foreign = await client.post("/api/jobs/", json={"tasks": [GOOD_TASK],
                                                    "job_bundle_id": bundle["id"]},
                                headers=other.headers)
    assert foreign.status == 400


async def test_job_bundle_and_its_id_must_name_the_same_bundle(
    tenancy_settings: Settings, client: Client
) -> None:
    config = await make_user(tenancy_settings, "acme", "alice", "CONFIG")
    bundles = {}
    for name in ("first", "second"):
        response = await client.post("/job_bundle/", json={"name": name}, headers=config.headers)
        assert response.status == 201
        bundles[name] = (await response.json())["id"]

    async def refused(body: dict[str, Any]) -> list[dict[str, str]]:
        response = await client.post("/api/jobs/", json={"tasks": [GOOD_TASK], **body},
                                     headers=config.headers)
        assert response.status == 400, body
        errors: list[dict[str, str]] = (await response.json())["errors"]
        return errors

    assert await refused({"job_bundle_id": bundles["first"], "job_bundle": "second"}) == [
        {"field": "job_bundle",
         "message": "names a different job bundle than job_bundle_id (that one is 'first')"}]
    assert (await refused({"job_bundle_id": "nope", "job_bundle": "second"}))[0]["field"] \
        == "job_bundle_id"
    job = await submit(client, config, {"tasks": [GOOD_TASK], "job_bundle_id": bundles["second"],
                                        "job_bundle": "second"})
    assert (job["job_bundle_id"], job["job_bundle"]) == (bundles["second"], "second")


async def test_another_organizations_key_sees_nothing_of_a_job(
    tenancy_settings: Settings, client: Client
) -> None:
    owner = await make_user(tenancy_settings, "acme", "alice")
    stranger = await make_user(tenancy_settings, "globex", "bob")
    async with backend(tenancy_settings):
        job = await submit(client, owner, {"tags": ["secret"], "tasks": [
            {"tool": "debug:log", "parameters": {"messages": ["private"]}}]})
        await wait_job(client, owner, job["id"])
        job_id = job["id"]
        for method, path in [
            ("GET", f"/api/jobs/{job_id}/"), ("GET", f"/api/jobs/{job_id}"),
            ("POST", f"/api/jobs/{job_id}/restart/"), ("POST", f"/api/jobs/{job_id}/resubmit/"),
            ("GET", f"/api/jobs/{job_id}/tasks/1/logs/"), ("GET", f"/api/job/{job_id}/log"),
        ]:
            response = await client.request(method, path, headers=stranger.headers)
            assert response.status == 404, (method, path, await response.text())
            if method == "GET":
                mine = await client.get(path, headers=owner.headers)
                assert mine.status == 200, path
        for query in ("", "?tag=secret", "?status=Completed"):
            listed = await (await client.get(f"/api/jobs/{query}",
                                             headers=stranger.headers)).json()
            assert listed["count"] == 0


async def test_logs_of_another_organization_are_404_with_the_logger_alone(
    tenancy_settings: Settings, client: Client
) -> None:
    owner = await make_user(tenancy_settings, "acme", "alice")
    stranger = await make_user(tenancy_settings, "globex", "bob")
    job = await submit(client, owner, {"tasks": [GOOD_TASK]})
    async with service(serve_logger, tenancy_settings):
        for path in (f"/api/jobs/{job['id']}/tasks/1/logs/", f"/api/job/{job['id']}/log"):
            assert (await client.get(path, headers=stranger.headers)).status == 404
            assert (await client.get(path, headers=owner.headers)).status == 200

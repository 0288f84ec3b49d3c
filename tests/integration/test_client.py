"""The client CLI against a running `conveyor dev` (which also runs its demo job), and every
example job to Completed."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from services.dev.demo import for_bucket
from services.dev.servers import free_port
from shared.broker import open_amqp
from shared.settings import load_settings
from shared.topology import Topology
from tests.conftest import ServerUrls
from tests.processes import conveyor, wait_exit, wait_text

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))
KEY = "clientkey.0123456789abcdefghijklmnopqrstuvwx"


@dataclass(frozen=True)
class Dev:
    url: str
    env: dict[str, str]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def dev(
    servers: ServerUrls, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Dev]:
    """One `conveyor dev` for this module, with its own queues; its demo job must complete."""
    prefix = f"test-{uuid.uuid4().hex[:12]}."
    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith("CONVEYOR_")}
    env = {**base_env, "CONVEYOR_AMQP_URL": servers.amqp_url, "CONVEYOR_AMQP_PREFIX": prefix,
           "CONVEYOR_DEV_API_KEY": KEY, "CONVEYOR_LOG_FORMAT": "json"}
    port = free_port()
    data = tmp_path_factory.mktemp("dev")
    log = data / "dev.log"
    async with conveyor(["dev", "--port", str(port), "--data-dir", str(data / "state")],
                        env, log) as process:
        output = await wait_text(log, "Press Ctrl-C to stop.", process, within=90)
        assert "conveyor dev: demo job " in output
        assert output.split("conveyor dev: demo job ")[1].split()[1] == "Completed"
        url = f"http://127.0.0.1:{port}"
        yield Dev(url, {**base_env, "CONVEYOR_URL": url, "CONVEYOR_API_KEY": KEY})
        process.process.terminate()
        assert await wait_exit(process, 60) == 0
    settings = load_settings(None, amqp_url=servers.amqp_url, amqp_prefix=prefix)
    async with open_amqp(settings, "cleanup") as connection:
        await Topology(prefix, tuple(settings.regions)).delete(await connection.channel())


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


async def cli(dev: Dev, *argv: str, env: dict[str, str] | None = None) -> Result:
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "services.cli", *argv],
        env=env if env is not None else dev.env, capture_output=True, text=True, timeout=120,
        check=False, cwd=ROOT,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def one_error_line(result: Result, fragment: str) -> None:
    assert result.code == 2, result
    assert result.err.startswith("conveyor: error: "), result
    assert fragment in result.err, result
    assert result.err.count("\n") == 1, result
    assert "Traceback" not in result.err


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
async def test_every_example_completes(dev: Dev, example: Path, tmp_path: Path) -> None:
    job_file = tmp_path / example.name
    job_file.write_text(json.dumps(for_bucket(json.loads(example.read_text()), "conveyor")))
    result = await cli(dev, "submit", str(job_file), "--wait")
    assert result.code == 0, result
    job_id = result.out.splitlines()[0]
    assert len(job_id) == 11
    assert f"job {job_id} Completed" in result.out


async def test_submit_wait_shows_progress_and_fails_with_the_job(
    dev: Dev, tmp_path: Path
) -> None:
    job_file = tmp_path / "failing.json"
    job_file.write_text(json.dumps({"tags": ["cli"], "tasks": [
        {"tool": "debug:sleep", "parameters": {"seconds": 1}},
        {"tool": "debug:log", "parameters": {"messages": ["boom"], "fail": True}},
        {"tool": "debug:sleep", "parameters": {"seconds": 0}}]}))
    result = await cli(dev, "submit", str(job_file), "--wait")
    assert result.code == 1, result
    assert "task   1 debug:sleep" in result.out
    assert "[########################] 100.0%" in result.out
    assert "ToolError: failed on request (fail: true)" in result.out
    assert "Cancelled" in result.out
    job_id = result.out.splitlines()[0]

    status = await cli(dev, "status", job_id)
    assert status.code == 0
    assert status.out.startswith(f"job {job_id} Failed")
    listed = await cli(dev, "jobs", "--tag", "cli", "--status", "Failed")
    assert listed.code == 0
    assert listed.out.splitlines()[0].startswith(f"{job_id}  Failed")
    logs = await cli(dev, "logs", job_id, "2")
    assert logs.code == 0
    assert logs.out.splitlines()[0].endswith(" boom")


async def test_logs_follow_streams_until_the_job_ends(dev: Dev, tmp_path: Path) -> None:
    job_file = tmp_path / "slow.json"
    job_file.write_text(json.dumps({"tasks": [
        {"tool": "debug:log", "parameters": {"messages": ["first"]}},
        {"tool": "debug:sleep", "parameters": {"seconds": 4}},
        {"tool": "debug:log", "parameters": {"messages": ["last"]}}]}))
    submitted = await cli(dev, "submit", str(job_file))
    assert submitted.code == 0
    job_id = submitted.out.strip()
    followed = await cli(dev, "logs", job_id, "--follow")
    assert followed.code == 0, followed
    lines = [line.split(" ", 1)[1] for line in followed.out.splitlines()]
    assert lines == ["first", "last"]
    whole = await cli(dev, "logs", job_id)
    assert [line.split(" ", 1)[1] for line in whole.out.splitlines()] == ["first", "last"]


async def test_client_errors_are_one_line(dev: Dev, tmp_path: Path) -> None:
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{nope")
    unknown_tool = tmp_path / "unknown.json"
    unknown_tool.write_text('{"tasks": [{"tool": "media:nothing"}]}')
    one_error_line(await cli(dev, "submit", str(tmp_path / "missing.json")), "no such file")
    one_error_line(await cli(dev, "submit", str(bad_json)), "not valid JSON")
    one_error_line(await cli(dev, "submit", str(unknown_tool)),
                   "HTTP 400 invalid request (tasks.0.tool: unknown tool 'media:nothing'")
    one_error_line(await cli(dev, "status", "nosuchjob00"), "HTTP 404 job 'nosuchjob00'")
    one_error_line(await cli(dev, "jobs", "--status", "soon"), "HTTP 400")
    one_error_line(await cli(dev, "jobs", "--url", "http://127.0.0.1:1"), "cannot reach Conveyor")
    one_error_line(await cli(dev, "jobs", "--api-key", "wrong.key"), "HTTP 401 invalid API key")
    no_key = {k: v for k, v in dev.env.items() if k != "CONVEYOR_API_KEY"}
    one_error_line(await cli(dev, "jobs", env=no_key), "no API key")

"""Hostile inputs to the worker's file tools, run for real: a zip bomb, archives that make
the worker's own paths show, and control characters (NUL) in workspace paths, at the
gateway and at a worker reached without it."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest

from services.dev.servers import free_port
from services.gateway.app import create_app
from services.worker.main import serve as serve_worker
from shared.messages import TaskDispatch, TaskFailed, decode
from shared.objects import open_objects
from shared.runtime import Broker
from shared.settings import Settings
from shared.topology import SCHEDULER_EVENTS, TASKS_EXCHANGE
from tests.conftest import SettingsFactory
from tests.messaging import wait_for_message
from tests.platform import Account, Client, backend, make_account, service, submit, wait_job


def zip_of(entries: dict[str, bytes | int]) -> bytes:
    """A ZIP (deflated); an int entry is that many zero bytes, written in 1 MiB pieces."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            with archive.open(name, "w", force_zip64=True) as entry:
                if isinstance(content, bytes):
                    entry.write(content)
                    continue
                piece = bytes(1024 * 1024)
                for _ in range(content // len(piece)):
                    entry.write(piece)
    return buffer.getvalue()


async def extract_job(client: Client, account: Account, settings: Settings, name: str,
                      data: bytes) -> dict[str, Any]:
    async with open_objects(settings) as objects:
        await objects.upload_bytes(f"samples/{name}", data)
    job = await submit(client, account, {"tasks": [
        {"tool": "storage:get", "parameters": {
            "source": f"s3://{settings.s3_bucket}/samples/{name}"}},
        {"tool": "archive:extract", "parameters": {"source": name, "destination": "out"}}]})
    return await wait_job(client, account, job["id"], within=60)


async def test_a_zip_bomb_is_refused_by_its_compression_ratio(
    settings_factory: SettingsFactory, aiohttp_client: Any
) -> None:
    # The size limit alone (20 GiB by default) lets 1 GiB through; the ratio does not.
    settings = settings_factory(logger_port=free_port())
    client: Client = await aiohttp_client(create_app(settings))
    account = await make_account(settings)
    bomb = zip_of({"zeros.bin": 1024**3})
    assert len(bomb) < 2 * 1024**2
    fine = zip_of({"notes.txt": b"plain text, compressed a little " * 1000,
                   "small-zeros.bin": 512 * 1024})  # very compressible, but small
    async with backend(settings):
        refused = await extract_job(client, account, settings, "bomb.zip", bomb)
        accepted = await extract_job(client, account, settings, "fine.zip", fine)
    task = refused["tasks"][1]
    assert refused["status_text"] == "Failed", refused
    assert task["attempts"] == 1, task
    assert task["outputs"] == [], task
    assert task["error"]["message"] == (
        f"refusing archive: it unpacks to {1024**3} bytes, more than 200 times its own "
        f"{len(bomb)} bytes (the limit of the compression ratio)")
    assert accepted["status_text"] == "Completed", accepted
    assert len(accepted["tasks"][1]["outputs"]) == 2


async def test_no_error_or_log_line_shows_the_scratch_directory(
    settings_factory: SettingsFactory, aiohttp_client: Any, tmp_path: Path
) -> None:
    scratch = tmp_path / "worker-scratch"
    scratch.mkdir()
    settings = settings_factory(logger_port=free_port(), scratch_dir=str(scratch))
    client: Client = await aiohttp_client(create_app(settings))
    account = await make_account(settings)
    async with open_objects(settings) as objects:
        await objects.upload_bytes("samples/notes.txt", b"not media at all")
        # A file `a`, then a file inside a folder `a`: the second cannot be written.
        await objects.upload_bytes("samples/clash.zip", zip_of({"a": b"1", "a/b": b"2"}))
    source = f"s3://{settings.s3_bucket}/samples/"
    jobs = [
        [{"tool": "storage:get", "parameters": {"source": source + "clash.zip"}},
         {"tool": "archive:extract", "parameters": {"source": "clash.zip",
                                                    "destination": "out"}}],
        [{"tool": "storage:get", "parameters": {"source": source + "notes.txt",
                                                "destination": "in/clip.mp4"}},
         {"tool": "media:probe", "parameters": {"source": "in/clip.mp4"}}],
        [{"tool": "storage:get", "parameters": {"source": source + "notes.txt",
                                                "destination": "in/clip.mp4"}},
         {"tool": "media:thumbnail", "parameters": {"source": "in/clip.mp4"}}],
    ]
    shown: list[str] = []
    names = ["worker-scratch", str(tmp_path)]
    async with backend(settings):
        for tasks in jobs:
            job = await submit(client, account, {"tasks": tasks})
            names.append(f"-{job['id']}-")  # the task's own scratch folder (conveyor-wPID-JOB-)
            done = await wait_job(client, account, job["id"], within=60)
            assert done["status_text"] == "Failed", done
            shown.append(str(done))
            logs = await client.get(f"/api/jobs/{job['id']}/tasks/2/logs/",
                                    headers=account.headers)
            assert logs.status == 200
            shown.append(await logs.text())
    errors = [text for text in shown if "'class'" in text]
    assert "cannot extract archive entry 'a/b': File exists" in errors[0], errors[0]
    assert "clip.mp4 is not media" in errors[1], errors[1]
    assert "clip.mp4 is not media" in errors[2], errors[2]
    for text in shown:
        for name in names:
            assert name not in text


@pytest.mark.parametrize(("tool", "parameters", "field"), [
    ("storage:get", {"source": "https://example.com/a", "destination": "a\u0000b.txt"},
     "destination"),
    ("storage:put", {"source": "out/\u0000*"}, "source"),
    ("storage:put", {"source": "a.txt", "destination": "s3://bucket/x\u0000y"}, "destination"),
    ("archive:extract", {"source": "a.zip", "destination": "out\u001b[2J"}, "destination"),
    ("media:probe", {"source": "clip\u0085.mp4"}, "source"),
    ("file:checksum", {"source": "line\nbreak.txt"}, "source"),
])
async def test_control_characters_in_paths_are_refused_at_submission(
    settings: Settings, aiohttp_client: Any, tool: str, parameters: dict[str, Any], field: str
) -> None:
    client: Client = await aiohttp_client(create_app(settings))
    account = await make_account(settings)
    response = await client.post("/api/jobs/", headers=account.headers, json={
        "tasks": [{"tool": tool, "parameters": parameters}]})
    body = await response.json()
    assert response.status == 400, body
    [error] = body["errors"]
    assert error["field"] == f"tasks.0.parameters.{field}", body
    assert error["message"].startswith("must not contain control characters (U+"), body


async def test_the_worker_refuses_control_characters_too(
    settings: Settings, broker: Broker
) -> None:
    """A dispatch that never passed the gateway (a producer's, or a forged one), and a
    file name the worker takes from a URL."""
    async def failure(job_id: str, tool: str, parameters: dict[str, Any]) -> TaskFailed:
        await broker.publisher.publish(TASKS_EXCHANGE, "local", TaskDispatch(
            job_id=job_id, task_id=1, attempt=1, region="local", tool=tool,
            parameters=parameters, workspace=f"jobs/{job_id}/"))
        while True:
            event = decode((await wait_for_message(broker, SCHEDULER_EVENTS, 20)).body)
            if isinstance(event, TaskFailed):
                assert event.job_id == job_id, event
                return event

    async with service(serve_worker, settings, "local"):
        forged = await failure("nulpath001", "storage:get", {
            "source": "https://example.com/a", "destination": "a\u0000b.txt"})
        derived = await failure("nulpath002", "storage:get", {
            "source": "http://127.0.0.1:9/report%00.pdf"})
    assert forged.error.error_class == "InvalidParameters"
    assert forged.error.message.startswith(
        "parameters.destination: must not contain control characters (U+0000"), forged
    assert derived.error.error_class == "ToolError"
    assert derived.error.message == (
        "parameters.source: its file name 'report\\x00.pdf' must not contain control "
        "characters (U+0000 at position 6); give a destination"), derived

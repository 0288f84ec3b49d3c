"""Helpers for tests that run Conveyor's real processes."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from services.dev.processes import ChildProcess

CONVEYOR = [sys.executable, "-m", "services.cli"]


@asynccontextmanager
async def conveyor(
    args: Sequence[str], env: dict[str, str], log_path: Path, name: str = "conveyor"
) -> AsyncIterator[ChildProcess]:
    child = await ChildProcess.start(name, [*CONVEYOR, *args], log_path=log_path, env=env,
                                     stop_timeout=30)
    try:
        yield child
    finally:
        await child.stop()


async def http_json(url: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(
        url, timeout=aiohttp.ClientTimeout(total=5)
    ) as response:
        return response.status, await response.json(content_type=None)


async def wait_status(
    url: str, status: int, child: ChildProcess | None = None, within: float = 30.0
) -> dict[str, Any]:
    """Poll `url` until it answers `status`; fail early if the child exits."""
    deadline = asyncio.get_running_loop().time() + within
    last: object = None
    while asyncio.get_running_loop().time() < deadline:
        if child is not None and child.returncode is not None:
            raise AssertionError(
                f"{child.name} exited with {child.returncode}:\n{child.log_path.read_text()}"
            )
        try:
            got, body = await http_json(url)
            if got == status:
                return body
            last = (got, body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            last = exc
        await asyncio.sleep(0.2)
    log = child.log_path.read_text() if child is not None else ""
    raise AssertionError(f"{url} did not answer {status} within {within}s: {last}\n{log}")


async def wait_exit(child: ChildProcess, within: float) -> int:
    return await asyncio.wait_for(child.process.wait(), within)


def log_events(path: Path) -> list[dict[str, Any]]:
    """The JSON log lines a service wrote."""
    events = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    return events


async def wait_log_event(
    path: Path, event: str, child: ChildProcess, within: float = 30.0
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        for entry in log_events(path):
            if entry.get("event") == event:
                return entry
        if child.returncode is not None:
            raise AssertionError(f"{child.name} exited:\n{path.read_text()}")
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {event!r} in {path} within {within}s:\n{path.read_text()}")


async def wait_text(path: Path, text: str, child: ChildProcess, within: float = 30.0) -> str:
    """Wait until the child's output contains `text`; returns the output so far."""
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        output = path.read_text()
        if text in output:
            return output
        if child.returncode is not None:
            raise AssertionError(f"{child.name} exited:\n{output}")
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {text!r} in {path} within {within}s:\n{path.read_text()}")

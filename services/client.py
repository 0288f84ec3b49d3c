"""The client commands: `conveyor submit|status|logs|jobs`. They talk to the gateway over
HTTP (`CONVEYOR_URL`, `CONVEYOR_API_KEY`, or `--url`/`--api-key`). Every failure is one line
on stderr and a non-zero exit; never a traceback."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from shared.errors import ConveyorError
from shared.jobspec import read_job_file

DEFAULT_URL = "http://127.0.0.1:8080"
POLL_SECONDS = 0.5
# The log routes allow 20 calls a minute per key: following a log polls every 3.5 s.
FOLLOW_SECONDS = 3.5
BAR_WIDTH = 24
EXIT = {"Completed": 0, "Failed": 1, "Cancelled": 3, "error": 2}
FINAL = {"Completed", "Failed", "Cancelled"}


class ClientError(Exception):
    """One line for the user; the command exits with code 2."""


def add_client_commands(commands: Any) -> None:
    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--url", help=f"Conveyor's base URL (default: CONVEYOR_URL or "
                                       f"{DEFAULT_URL})")
        sub.add_argument("--api-key", help="API key (default: CONVEYOR_API_KEY)")

    submit = commands.add_parser("submit", help="submit a job file; prints the job id")
    submit.add_argument("job_file", type=Path, metavar="JOB.json")
    submit.add_argument("--wait", action="store_true",
                        help="show progress until the job ends; exit 0 only if it Completed")
    status = commands.add_parser("status", help="show a job and its tasks")
    status.add_argument("job_id", metavar="ID")
    logs = commands.add_parser("logs", help="print a job's (or one task's) log")
    logs.add_argument("job_id", metavar="ID")
    logs.add_argument("task_id", nargs="?", type=int, metavar="TASK_ID")
    logs.add_argument("--follow", "-f", action="store_true",
                      help="keep printing new lines until the job ends")
    jobs = commands.add_parser("jobs", help="list your jobs, newest first")
    jobs.add_argument("--tag")
    jobs.add_argument("--status", help="number or name, e.g. 2 or Completed")
    jobs.add_argument("--limit", type=int, default=20)
    for sub in (submit, status, logs, jobs):
        common(sub)


@dataclass
class Api:
    url: str
    key: str
    session: aiohttp.ClientSession

    async def call(self, method: str, path: str, body: Any = None,
                   params: dict[str, str] | None = None) -> Any:
        try:
            async with self.session.request(
                method, f"{self.url}{path}", json=body, params=params,
                headers={"Authorization": f"api-key {self.key}"},
            ) as response:
                text = await response.text()
                if response.status == 429:
                    raise RateLimited(float(response.headers.get("Retry-After", "5")))
                if response.status >= 400:
                    raise ClientError(describe_error(response.status, text))
                return json.loads(text) if text else None
        except aiohttp.ClientConnectorError as exc:
            raise ClientError(f"cannot reach Conveyor at {self.url}: {exc.os_error}") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ClientError(f"request to {self.url} failed: {type(exc).__name__}") from None


    async def get_patiently(self, path: str, params: dict[str, str] | None) -> Any:
        """GET, waiting out a rate limit as long as the server asks."""
        while True:
            try:
                return await self.call("GET", path, params=params)
            except RateLimited as exc:
                await asyncio.sleep(exc.retry_after)


class RateLimited(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited; retry in {retry_after:g} s")
        self.retry_after = retry_after


def describe_error(status: int, text: str) -> str:
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        return f"HTTP {status}: {text[:200]}"
    message = body.get("error", f"HTTP {status}") if isinstance(body, dict) else str(body)
    details = "; ".join(f"{e['field']}: {e['message']}" for e in body.get("errors", [])
                        if isinstance(e, dict)) if isinstance(body, dict) else ""
    return f"HTTP {status} {message}" + (f" ({details})" if details else "")


def read_job(path: Path) -> Any:
    try:
        return read_job_file(path)
    except ConveyorError as exc:
        raise ClientError(str(exc)) from None


def bar(progress: float) -> str:
    filled = round(BAR_WIDTH * max(0.0, min(100.0, progress)) / 100)
    return "[" + "#" * filled + "-" * (BAR_WIDTH - filled) + f"] {progress:5.1f}%"


def task_lines(job: dict[str, Any]) -> list[str]:
    lines = []
    for task in job["tasks"]:
        line = f"  task {task['id']:>3} {task['tool']:<14} {task['status_text']:<10} " + bar(
            float(task.get("progress") or 0))
        if task.get("error"):
            line += f"  {task['error'].get('class')}: {task['error'].get('message')}"
        lines.append(line)
    return lines


class Progress:
    """Redraws the task lines in place on a terminal; prints each change once elsewhere."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self.drawn = 0
        self.last: list[str] = []

    def show(self, job: dict[str, Any]) -> None:
        lines = [f"job {job['id']} {job['status_text']}", *task_lines(job)]
        if lines == self.last:
            return
        if self.tty and self.drawn:
            self.out.write(f"\x1b[{self.drawn}F\x1b[J")
        self.out.write("\n".join(lines) + "\n")
        self.out.flush()
        self.drawn, self.last = len(lines), lines


async def wait_for(api: Api, job_id: str, show: Callable[[dict[str, Any]], None]) -> str:
    while True:
        job = await api.call("GET", f"/api/jobs/{job_id}/")
        show(job)
        if job["status_text"] in FINAL:
            return str(job["status_text"])
        await asyncio.sleep(POLL_SECONDS)


async def submit(api: Api, args: argparse.Namespace) -> int:
    job = await api.call("POST", "/api/jobs/", read_job(args.job_file))
    print(job["id"], flush=True)
    if not args.wait:
        return 0
    final = await wait_for(api, job["id"], Progress(sys.stdout).show)
    return EXIT[final]


async def status(api: Api, args: argparse.Namespace) -> int:
    job = await api.call("GET", f"/api/jobs/{args.job_id}/")
    print(f"job {job['id']} {job['status_text']}  region {job['region']}  "
          f"tags {','.join(job['tags']) or '-'}  created {job['created']}")
    for line, task in zip(task_lines(job), job["tasks"], strict=True):
        print(line)
        for output in task.get("outputs", []):
            print(f"           output {output['path']} ({output['size']} bytes) "
                  f"{output.get('url') or ''}".rstrip())
    return 0


def _ts(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def task_log(api: Api, job_id: str, task_id: int, follow: bool) -> int:
    cursor: str | None = None
    ending = False
    while True:
        params = {"cursor": cursor} if cursor else None
        page = await api.get_patiently(f"/api/jobs/{job_id}/tasks/{task_id}/logs/", params)
        for line in page["logs"]:
            print(f"{_ts(line['timestamp'])} {line['message']}", flush=True)
        cursor = page.get("cursor") or cursor
        if page["next"]:
            continue
        if not follow or ending:
            return 0
        job = await api.call("GET", f"/api/jobs/{job_id}/")
        ending = job["status_text"] in FINAL  # one more read picks up the last lines
        await asyncio.sleep(FOLLOW_SECONDS)


async def job_log(api: Api, job_id: str, follow: bool) -> int:
    seen: set[tuple[str, str]] = set()
    since: str | None = None
    ending = False
    while True:
        params = {"from": since} if since else None
        entries = await api.get_patiently(f"/api/job/{job_id}/log", params)
        for entry in reversed(entries):  # oldest first on a terminal
            key = (entry["date"], entry["message"])
            if key not in seen:
                seen.add(key)
                print(f"{entry['date']} {entry['message']}", flush=True)
        if entries:
            since = entries[0]["date"]
        if not follow or ending:
            return 0
        job = await api.call("GET", f"/api/jobs/{job_id}/")
        ending = job["status_text"] in FINAL  # one more read picks up the last lines
        await asyncio.sleep(FOLLOW_SECONDS)


async def logs(api: Api, args: argparse.Namespace) -> int:
    if args.task_id is not None:
        return await task_log(api, args.job_id, args.task_id, args.follow)
    return await job_log(api, args.job_id, args.follow)


async def jobs(api: Api, args: argparse.Namespace) -> int:
    params = {"page_size": str(max(1, min(100, args.limit)))}
    if args.tag:
        params["tag"] = args.tag
    if args.status:
        params["status"] = args.status
    page = await api.call("GET", "/api/jobs/", params=params)
    for job in page["results"]:
        done = sum(1 for t in job["tasks"] if t["status_text"] == "Completed")
        print(f"{job['id']}  {job['status_text']:<10} {done}/{len(job['tasks'])} tasks  "
              f"{job['region']:<12} {job['created']}  {','.join(job['tags']) or '-'}")
    print(f"{page['count']} job(s)", file=sys.stderr)
    return 0


COMMANDS = {"submit": submit, "status": status, "logs": logs, "jobs": jobs}


async def run(args: argparse.Namespace, url: str, key: str) -> int:
    timeout = aiohttp.ClientTimeout(total=60, connect=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        return await COMMANDS[args.command](Api(url.rstrip("/"), key, session), args)


def main(args: argparse.Namespace, environ: dict[str, str]) -> int:
    url = args.url or environ.get("CONVEYOR_URL") or DEFAULT_URL
    key = args.api_key or environ.get("CONVEYOR_API_KEY")
    try:
        if not url.startswith(("http://", "https://")):
            raise ClientError(f"the URL {url!r} must start with http:// or https://")
        if not key:
            raise ClientError("no API key: set CONVEYOR_API_KEY or pass --api-key")
        return asyncio.run(run(args, url, key))
    except ClientError as exc:
        print(f"conveyor: error: {exc}", file=sys.stderr)
        return EXIT["error"]
    except KeyboardInterrupt:
        return 130

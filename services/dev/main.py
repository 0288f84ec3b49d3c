"""`conveyor dev`: the whole platform on one machine.

The four services run as child processes, exactly as in production (`conveyor gateway`, …),
rather than in this process: a crash or a blocking call in one cannot take the others down,
SIGTERM handling is the real one, both cores are used, and `conveyor worker --env-file
D/conveyor.env` joins the same instance the same way.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import structlog

from services.client import ClientError
from services.dev.demo import run_demo, upload_sample
from services.dev.processes import ChildProcess
from services.dev.proxy import create_proxy
from services.dev.servers import LocalServers, free_port, port_answers
from shared.accounts import ensure_account, new_api_key
from shared.errors import DependencyError
from shared.health import serve_app
from shared.objects import open_objects
from shared.runtime import run_service, stop_event
from shared.settings import Settings, to_env_lines
from shared.store import open_store

log = structlog.get_logger(__name__)
READY_TIMEOUT = 60.0
DEMO_ORGANIZATION = "demo"
DEMO_USER = "demo"


async def amqp_answers(url: str) -> bool:
    host_port = url.split("@")[-1].split("/")[0]
    host, _, port = host_port.partition(":")
    return await port_answers(host or "127.0.0.1", int(port or 5672))


def instance_prefix(data_dir: Path) -> str:
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:8]
    return f"dev-{digest}."


async def start_servers(settings: Settings, data_dir: Path, servers: LocalServers) -> Settings:
    """Use every server the settings name explicitly; start a local stand-in for the rest."""
    explicit = settings.model_fields_set
    update: dict[str, object] = {}
    if "mongo_url" not in explicit:
        update["mongo_url"] = await servers.start_mongo(data_dir)
    if "s3_endpoint" not in explicit:
        update["s3_endpoint"] = await servers.start_s3(data_dir)
    if "amqp_prefix" not in explicit:
        # The machine's broker may serve other instances (another `conveyor dev`, tests): a
        # prefix of this instance's own keeps their queues apart. It follows the data
        # directory, so a restart finds the messages its last run left.
        update["amqp_prefix"] = instance_prefix(data_dir)
    if not await amqp_answers(settings.amqp_url):
        log.info("no RabbitMQ at CONVEYOR_AMQP_URL; starting a private node")
        update["amqp_url"] = await servers.start_rabbitmq(data_dir)
    return settings.model_copy(update=update)


def write_env_file(settings: Settings, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Written by `conveyor dev`: settings for a process that joins this instance,\n"
        "# e.g. `conveyor worker --env-file " + path.name + "`. Contains secrets.\n"
        + "\n".join(to_env_lines(settings)) + "\n"
    )
    path.chmod(0o600)


async def bootstrap(settings: Settings, demo: bool) -> str:
    """The demo organization, user and API key; with `demo`, a sample object too."""
    key = (settings.dev_api_key.get_secret_value() if settings.dev_api_key
           else new_api_key())
    async with open_store(settings, "conveyor-dev") as store:
        await ensure_account(store, DEMO_ORGANIZATION, DEMO_USER, key, roles=["CONFIG"])
    if demo:
        async with open_objects(settings) as objects:
            await upload_sample(objects)
    return key


async def wait_ready(base_url: str, children: list[ChildProcess], within: float) -> None:
    deadline = asyncio.get_running_loop().time() + within
    async with aiohttp.ClientSession() as session:
        while True:
            for child in children:
                if child.returncode is not None:
                    raise DependencyError(
                        f"{child.name} exited with code {child.returncode}; see {child.log_path}"
                    )
            try:
                async with session.get(f"{base_url}/readyz") as response:
                    if response.status == 200:
                        return
                    failing = (await response.json()).get("failing", {})
            except aiohttp.ClientError as exc:
                failing = {"dev": str(exc)}
            if asyncio.get_running_loop().time() > deadline:
                raise DependencyError(f"not ready after {within:g}s: {failing}")
            await asyncio.sleep(0.3)


async def first_exit(children: list[ChildProcess]) -> ChildProcess:
    waits = {asyncio.ensure_future(child.process.wait()): child for child in children}
    try:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        return waits[next(iter(done))]
    finally:
        for future in waits:
            future.cancel()


async def run_dev(
    settings: Settings, port: int, data_dir: Path, workers: int, demo: bool
) -> None:
    stop = stop_event()
    servers = LocalServers()
    children: list[ChildProcess] = []
    async with AsyncExitStack() as stack:
        stack.push_async_callback(servers.stop)
        settings = await start_servers(settings, data_dir, servers)
        service_ports = {name: free_port() for name in ("gateway", "scheduler", "logger")}
        public_url = settings.public_url or f"http://127.0.0.1:{port}"
        settings = settings.model_copy(update={
            **{f"{name}_port": value for name, value in service_ports.items()},
            "worker_port": 0, "public_url": public_url, "bind_host": "127.0.0.1",
        })
        env_file = data_dir / "conveyor.env"
        write_env_file(settings, env_file)
        key = await bootstrap(settings, demo)

        async def stop_children() -> None:
            # Workers first, so that nothing they report is left without a consumer.
            for child in reversed(children):
                await child.stop()

        stack.push_async_callback(stop_children)
        upstreams: dict[str, str] = {}
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
        launch = [sys.executable, "-m", "services.cli"]
        for name, service_port in service_ports.items():
            children.append(await ChildProcess.start(
                name, [*launch, name, "--env-file", str(env_file)],
                log_path=data_dir / "logs" / f"{name}.log", env=child_env,
                stop_timeout=settings.grace_period + 5,
            ))
            upstreams[name] = f"http://127.0.0.1:{service_port}"
        for region in settings.regions:
            for index in range(workers):
                worker_port = free_port()
                name = f"worker-{len(upstreams) - 2}"
                children.append(await ChildProcess.start(
                    name, [*launch, "worker", "--env-file", str(env_file), "--region", region,
                           "--port", str(worker_port)],
                    log_path=data_dir / "logs" / f"{name}.log", env=child_env,
                    stop_timeout=settings.grace_period + 5,
                ))
                upstreams[name] = f"http://127.0.0.1:{worker_port}"
                log.debug("worker", name=name, region=region, index=index)

        await stack.enter_async_context(serve_app(create_proxy(upstreams), "127.0.0.1", port))
        await wait_ready(public_url, children, READY_TIMEOUT)
        if demo:
            try:
                await run_demo(public_url, key, settings.s3_bucket)
            except ClientError as exc:
                print(f"conveyor dev: the demo job could not run: {exc}", flush=True)
        print_banner(public_url, key, env_file, settings.regions, workers)

        waiter = asyncio.ensure_future(stop.wait())
        exited = asyncio.ensure_future(first_exit(children))
        await asyncio.wait({waiter, exited}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if exited.done():
            child = exited.result()
            raise DependencyError(
                f"{child.name} exited with code {child.returncode}; see {child.log_path}"
            )
        exited.cancel()
        print("\nconveyor dev: stopping…", file=sys.stderr, flush=True)


def print_banner(url: str, key: str, env_file: Path, regions: list[str], workers: int) -> None:
    print(
        f"\nConveyor is running at {url}\n"
        f"  API key:   {key}\n"
        f"  regions:   {', '.join(regions)} ({workers} worker(s) each)\n"
        f"  env file:  {env_file}  (conveyor worker --env-file {env_file})\n"
        f"  try:       curl -H 'Authorization: api-key {key}' {url}/api/jobs/\n"
        f"  or:        CONVEYOR_URL={url} CONVEYOR_API_KEY={key} \\\n"
        "             .venv/bin/conveyor submit examples/progress.json --wait\n"
        "Press Ctrl-C to stop.\n",
        flush=True,
    )


def main(settings: Settings, *, port: int, data_dir: Path, workers: int, demo: bool) -> int:
    return run_service(
        "dev", lambda: run_dev(settings, port, data_dir.resolve(), workers, demo)
    )

"""`conveyor dev`: the whole platform on one machine.

The four services run as child processes, exactly as in production (`conveyor gateway`, …),
rather than in this process: a crash or a blocking call in one cannot take the others down
(one that exits is started again, as are the local servers: see supervisor.py), SIGTERM
handling is the real one, both cores are used, and `conveyor worker --env-file
D/conveyor.env` joins the same instance the same way. With `--ephemeral` the instance leaves
nothing behind when it stops: not its queues and exchanges, nor its data directory.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import sys
import tempfile
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import structlog
from aiormq.exceptions import AMQPError

from services.client import ClientError
from services.dev.demo import run_demo, upload_sample
from services.dev.processes import ChildProcess, ChildSpec, Slot
from services.dev.proxy import create_proxy
from services.dev.servers import MOTO, LocalServers, free_port, port_answers
from services.dev.supervisor import AfterRestart, Supervisor
from shared.accounts import ensure_account, new_api_key
from shared.broker import open_amqp
from shared.errors import ConveyorError, DependencyError
from shared.health import serve_app
from shared.objects import open_objects
from shared.runtime import run_service, stop_event
from shared.settings import Settings, to_env_lines
from shared.store import open_store
from shared.teardown import check_prefix, delete_by_prefix, vhost_of

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


def service_specs(
    settings: Settings, env_file: Path, data_dir: Path, workers: int
) -> dict[str, tuple[ChildSpec, str]]:
    """Each service's spec and its base URL, by name: gateway, scheduler, logger, then the
    workers (`worker-1`, …) of every region."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    launch = [sys.executable, "-m", "services.cli"]

    def spec(name: str, *args: str) -> ChildSpec:
        return ChildSpec(name, [*launch, *args, "--env-file", str(env_file)],
                         log_path=data_dir / "logs" / f"{name}.log", env=child_env,
                         stop_timeout=settings.grace_period + 5)

    specs = {name: (spec(name, name), f"http://127.0.0.1:{getattr(settings, f'{name}_port')}")
             for name in ("gateway", "scheduler", "logger")}
    for region in settings.regions:
        for _ in range(workers):
            name, worker_port = f"worker-{len(specs) - 2}", free_port()
            specs[name] = (spec(name, "worker", "--region", region, "--port", str(worker_port)),
                           f"http://127.0.0.1:{worker_port}")
    return specs


async def remove_topology(settings: Settings) -> None:
    """--ephemeral: the instance's queues and exchanges go when it stops."""
    prefix = settings.amqp_prefix
    try:
        async with open_amqp(settings, "conveyor-dev") as connection:
            removed = await delete_by_prefix(
                connection, prefix, regions=settings.regions,
                max_delay_seconds=settings.retry_max_delay, vhost=vhost_of(settings.amqp_url))
    except (ConveyorError, AMQPError, ConnectionError) as exc:
        print(f"conveyor dev: could not remove the queues of {prefix}: {exc}; run "
              f"`conveyor admin topology delete --prefix {prefix}`", file=sys.stderr, flush=True)
        return
    print(f"conveyor dev: removed {len(removed.queues)} queue(s) and "
          f"{len(removed.exchanges)} exchange(s) of {prefix}", file=sys.stderr, flush=True)


def remove_data_dir(data_dir: Path) -> None:
    shutil.rmtree(data_dir, ignore_errors=True)
    print(f"conveyor dev: removed {data_dir}", file=sys.stderr, flush=True)


def reseeder(settings: Settings, demo: bool) -> AfterRestart:
    async def reseed() -> str:
        async with open_objects(settings) as objects:  # makes the bucket again
            if demo:
                await upload_sample(objects)
        again = "the bucket and the samples were" if demo else "the bucket was"
        return f"it keeps objects in memory, so every object it held is lost; {again} made again"

    return reseed


async def run_dev(
    settings: Settings, port: int, data_dir: Path | None, workers: int, demo: bool,
    ephemeral: bool = False,
) -> None:
    stop = stop_event()
    servers = LocalServers()
    supervisor = Supervisor()
    services: list[Slot] = []
    if ephemeral and "amqp_prefix" in settings.model_fields_set:
        # An empty or too short prefix would remove another instance's queues on stop.
        check_prefix(settings.amqp_prefix, "CONVEYOR_AMQP_PREFIX")
    async with AsyncExitStack() as stack:
        if data_dir is None:  # only with --ephemeral
            data_dir = Path(tempfile.mkdtemp(prefix="conveyor-dev-"))
        if ephemeral:
            stack.callback(remove_data_dir, data_dir)
        stack.push_async_callback(servers.stop)
        settings = await start_servers(settings, data_dir, servers)
        if ephemeral:
            stack.push_async_callback(remove_topology, settings)
        public_url = settings.public_url or f"http://127.0.0.1:{port}"
        settings = settings.model_copy(update={
            **{f"{name}_port": free_port() for name in ("gateway", "scheduler", "logger")},
            "worker_port": 0, "public_url": public_url, "bind_host": "127.0.0.1",
        })
        env_file = data_dir / "conveyor.env"
        write_env_file(settings, env_file)
        key = await bootstrap(settings, demo)

        async def stop_services() -> None:
            # Workers first, so that nothing they report is left without a consumer.
            for slot in reversed(services):
                await slot.child.stop()

        stack.push_async_callback(stop_services)
        # Runs before the stops above: nothing stopped on purpose is started again.
        stack.push_async_callback(supervisor.stop)
        upstreams: dict[str, str] = {}
        for name, (spec, base_url) in service_specs(settings, env_file, data_dir,
                                                    workers).items():
            services.append(await Slot.start(spec))
            upstreams[name] = base_url

        await stack.enter_async_context(serve_app(create_proxy(upstreams), "127.0.0.1", port))
        await wait_ready(public_url, [slot.child for slot in services + servers.slots],
                         READY_TIMEOUT)
        # From here on a child that exits is started again; one that fails before the
        # platform was ready once is a configuration error, reported above.
        for slot in servers.slots:
            supervisor.watch(slot, reseeder(settings, demo) if slot.spec.name == MOTO else None)
        for slot in services:
            supervisor.watch(slot)
        if demo and workers == 0:
            print("conveyor dev: no workers here (--workers 0), so the demo job is not run",
                  flush=True)
        elif demo:
            try:
                await run_demo(public_url, key, settings.s3_bucket)
            except ClientError as exc:
                print(f"conveyor dev: the demo job could not run: {exc}", flush=True)
        print_banner(public_url, key, env_file, settings.regions, workers)
        await stop.wait()
        print("\nconveyor dev: stopping…", file=sys.stderr, flush=True)


def print_banner(url: str, key: str, env_file: Path, regions: list[str], workers: int) -> None:
    print(
        f"\nConveyor is running at {url}\n"
        f"  API key:   {key}\n"
        f"  regions:   {', '.join(regions)} ({workers} worker(s) each"
        + (": start them with the env file below" if workers == 0 else "") + ")\n"
        f"  env file:  {env_file}  (conveyor worker --env-file {env_file})\n"
        f"  try:       curl -H 'Authorization: api-key {key}' {url}/api/jobs/\n"
        f"  or:        CONVEYOR_URL={url} CONVEYOR_API_KEY={key} \\\n"
        "             .venv/bin/conveyor submit examples/progress.json --wait\n"
        "Press Ctrl-C to stop.\n",
        flush=True,
    )


def main(
    settings: Settings, *, port: int, data_dir: Path | None, workers: int, demo: bool,
    ephemeral: bool = False,
) -> int:
    return run_service("dev", lambda: run_dev(
        settings, port, data_dir.resolve() if data_dir else None, workers, demo, ephemeral))

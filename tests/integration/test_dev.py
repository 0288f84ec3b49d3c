"""`conveyor dev`: the whole platform from one command, joined by a second worker, and
nothing left running after SIGTERM; the GATE API's curl walkthrough runs against it. An
ephemeral instance leaves nothing on the shared broker nor on disk; a killed service or
local server is started again; `--workers 0` serves workers started apart."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from aio_pika.abc import AbstractConnection

from services.client import Api, wait_for
from services.dev.demo import EXAMPLES, for_bucket
from services.dev.main import instance_prefix
from services.dev.servers import free_port
from shared.broker import open_amqp
from shared.settings import Settings, load_settings
from shared.teardown import broker_listing, delete_by_prefix, existing
from shared.topology import Topology
from tests.processes import conveyor, wait_exit, wait_log_event, wait_status, wait_text

DEV_KEY = "devkeyabc.0123456789abcdefghijklmnopqrstuv"
WALKTHROUGH = Path(__file__).resolve().parents[2] / "examples" / "gate" / "walkthrough.sh"


def descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


async def test_dev_runs_everything_on_one_port_and_leaves_nothing_behind(
    subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    # Only the broker (with this test's prefix) is given: dev starts MongoDB and S3 itself.
    env = {k: v for k, v in subprocess_env.items()
           if k not in {"CONVEYOR_MONGO_URL", "CONVEYOR_S3_ENDPOINT"}}
    env["CONVEYOR_DEV_API_KEY"] = DEV_KEY
    port = free_port()
    data_dir = tmp_path / "dev"
    base = f"http://127.0.0.1:{port}"
    async with conveyor(["dev", "--port", str(port), "--data-dir", str(data_dir),
                         "--workers", "2", "--regions", "local,aws:eu-central-1", "--no-demo"],
                        env, tmp_path / "dev.log") as dev:
        ready = await wait_status(f"{base}/readyz", 200, dev, within=60)
        assert ready["services"] == ["gateway", "scheduler", "logger", "worker-1", "worker-2",
                                     "worker-3", "worker-4"]
        for name in ready["services"]:
            own = await wait_status(f"{base}/_services/{name}/readyz", 200, dev)
            assert own["service"] == name.split("-")[0]
        banner = await wait_text(tmp_path / "dev.log", "Press Ctrl-C to stop.", dev)
        assert f"Conveyor is running at {base}" in banner
        assert f"API key:   {DEV_KEY}" in banner

        # The GATE API's curl walkthrough (docs/gate-api.md), in both of its formats.
        for form in ("json", "xml"):
            walk = await asyncio.create_subprocess_exec(
                str(WALKTHROUGH), stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, "CONVEYOR_URL": base, "CONVEYOR_API_KEY": DEV_KEY,
                     "FORMAT": form})
            output = (await asyncio.wait_for(walk.communicate(), 120))[0].decode()
            assert walk.returncode == 0, output
            assert "documentsProcessed" in output
            assert "COMPLETED" in output

        env_file = data_dir / "conveyor.env"
        joined_settings = load_settings(env_file)
        assert joined_settings.regions == ["local", "aws:eu-central-1"]
        assert joined_settings.amqp_prefix == env["CONVEYOR_AMQP_PREFIX"]
        assert joined_settings.mongo_url.startswith("mongodb://127.0.0.1:")
        clean_env = {k: v for k, v in env.items() if not k.startswith("CONVEYOR_")}
        clean_env["CONVEYOR_LOG_FORMAT"] = "json"
        worker_log = tmp_path / "joined.log"
        async with conveyor(["worker", "--env-file", str(env_file)], clean_env,
                            worker_log) as joined:
            ready_line = await wait_log_event(worker_log, "ready", joined)
            await wait_status(f"http://127.0.0.1:{ready_line['port']}/readyz", 200, joined)
            joined.process.send_signal(signal.SIGTERM)
            assert await wait_exit(joined, 20) == 0

        started = descendants(dev.pid)
        assert len(started) >= 9  # nx-27017, moto, gateway, scheduler, logger, 4 workers
        dev.process.send_signal(signal.SIGTERM)
        assert await wait_exit(dev, 60) == 0
        _, alive = psutil.wait_procs(started, timeout=10)
        assert alive == [], [p.cmdline() for p in alive]


def dev_env(subprocess_env: dict[str, str], *drop: str) -> dict[str, str]:
    """Only the broker is given: dev starts MongoDB and S3 itself."""
    gone = {"CONVEYOR_MONGO_URL", "CONVEYOR_S3_ENDPOINT", *drop}
    return {**{k: v for k, v in subprocess_env.items() if k not in gone},
            "CONVEYOR_DEV_API_KEY": DEV_KEY}


async def prefix_names(connection: AbstractConnection, prefix: str) -> list[str]:
    """Every queue and exchange of `prefix` on the shared broker, found by a passive declare
    of every name the topology knows and, where rabbitmqctl reaches it, the broker's listing."""
    listing = await broker_listing("/")
    listed = [] if isinstance(listing, str) else [
        name for names in listing for name in names if name.startswith(prefix)]
    topology = Topology(prefix, ("local",))
    known = await existing(connection, topology.known_queues(300), exchange=False)
    known += await existing(connection, topology.exchange_names, exchange=True)
    return sorted({*listed, *known})


async def test_ephemeral_dev_leaves_no_queue_exchange_or_data_dir(
    subprocess_env: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    # No prefix given: dev derives its own from the data directory, as a script's dev does.
    env = dev_env(subprocess_env, "CONVEYOR_AMQP_PREFIX")
    data_dir = tmp_path / "ephemeral"
    prefix = instance_prefix(data_dir)
    port = free_port()
    async with open_amqp(settings, "test") as connection:
        try:
            async with conveyor(["dev", "--ephemeral", "--port", str(port), "--data-dir",
                                 str(data_dir), "--no-demo"], env, tmp_path / "dev.log") as dev:
                await wait_status(f"http://127.0.0.1:{port}/readyz", 200, dev, within=60)
                # A retry's delay queue, as a failing handler leaves it behind.
                channel = await connection.channel()
                await Topology(prefix).declare_delay_queue(channel, "tasks.local", 2500)
                await channel.close()
                before = await prefix_names(connection, prefix)
                assert f"{prefix}delay.tasks.local.2500" in before
                # 4 work, 4 dead, 1 delay queue, 6 exchanges, and the worker's control queue
                # (exclusive: it goes with the worker's connection).
                assert len(before) == 16, before
                assert sum(name.startswith(f"{prefix}worker.") for name in before) == 1
                assert data_dir.exists()
                dev.process.send_signal(signal.SIGTERM)
                assert await wait_exit(dev, 60) == 0
            assert await prefix_names(connection, prefix) == []
            assert not data_dir.exists()
        finally:  # a failed run leaves nothing on the shared broker either
            await delete_by_prefix(connection, prefix, regions=["local"],
                                   max_delay_seconds=300)


async def run_job(base: str, job: dict[str, Any], within: float = 90) -> str:
    async with aiohttp.ClientSession() as session:
        api = Api(base, DEV_KEY, session)
        submitted = await api.call("POST", "/api/jobs/", job)
        return await asyncio.wait_for(wait_for(api, submitted["id"], lambda _: None), within)


async def test_dev_restarts_a_killed_service_and_server_and_serves_external_workers(
    subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    env = dev_env(subprocess_env)
    port, data_dir, dev_log = free_port(), tmp_path / "dev", tmp_path / "dev.log"
    base = f"http://127.0.0.1:{port}"
    # With the demo: dev uploads the samples (which the job below reads), runs no demo job.
    async with conveyor(["dev", "--workers", "0", "--port", str(port), "--data-dir",
                         str(data_dir)], env, dev_log) as dev:
        ready = await wait_status(f"{base}/readyz", 200, dev, within=60)
        assert ready["services"] == ["gateway", "scheduler", "logger"]
        banner = await wait_text(dev_log, "Press Ctrl-C to stop.", dev)
        assert "no workers here (--workers 0), so the demo job is not run" in banner

        env_file = data_dir / "conveyor.env"
        bucket = load_settings(env_file).s3_bucket
        job = for_bucket(json.loads((EXAMPLES / "fetch-and-store.json").read_text()), bucket)
        clean_env = {k: v for k, v in env.items() if not k.startswith("CONVEYOR_")}
        clean_env["CONVEYOR_LOG_FORMAT"] = "json"
        worker_log = tmp_path / "worker.log"
        async with conveyor(["worker", "--env-file", str(env_file)], clean_env,
                            worker_log) as worker:
            await wait_log_event(worker_log, "ready", worker)
            assert await run_job(base, job) == "Completed"

            children = {" ".join(p.cmdline()): p for p in psutil.Process(dev.pid).children()}
            for name, part in (("scheduler", "services.cli scheduler"),
                               ("nx-27017", "nx-27017"), ("moto_server", "moto_server")):
                victim = next(p for line, p in children.items() if part in line)
                victim.kill()
                output = await wait_text(dev_log, f"{name} restarted (pid", dev, within=60)
                assert f"{name} exited with code -9" in output
            assert "every object it held is lost; the bucket and the samples were made" \
                in output
            await wait_status(f"{base}/readyz", 200, dev, within=60)
            # The store kept the account, S3 has the sample again, the scheduler serves.
            assert await run_job(base, job) == "Completed"
            worker.process.send_signal(signal.SIGTERM)
            assert await wait_exit(worker, 20) == 0
        dev.process.send_signal(signal.SIGTERM)
        assert await wait_exit(dev, 60) == 0

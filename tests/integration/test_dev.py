"""`conveyor dev`: the whole platform from one command, joined by a second worker, and
nothing left running after SIGTERM; the GATE API's curl walkthrough runs against it."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import psutil

from services.dev.servers import free_port
from shared.settings import load_settings
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

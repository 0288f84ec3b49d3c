"""Local stand-ins for the servers Conveyor needs, started as child processes when no real
server is configured: MongoDB's protocol via `nx-27017` (SQLite), S3 via `moto_server`, and a
private `rabbitmq-server` node when no broker answers. The test fixtures use these too."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from services.dev.processes import ChildProcess, ChildSpec, Slot
from shared.errors import DependencyError

RABBITMQ_SCRIPT_DIRS = (Path("/usr/lib/rabbitmq/bin"), Path("/usr/sbin"))
# Name of the S3 stand-in's slot: it keeps objects in memory, so `conveyor dev` re-seeds it
# after a restart.
MOTO = "moto_server"
INSTALL_RABBITMQ_HINT = (
    "no RabbitMQ answers at CONVEYOR_AMQP_URL and rabbitmq-server is not installed: "
    "install it (Debian/Ubuntu: `sudo apt-get install rabbitmq-server`), start one "
    "(`docker run -p 5672:5672 rabbitmq:3-management`), or set CONVEYOR_AMQP_URL"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def venv_script(name: str) -> str:
    """A console script installed beside this interpreter, else one on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise DependencyError(f"{name} is not installed: pip install 'conveyor[dev-servers]'")
    return found


async def port_answers(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    await writer.wait_closed()
    return True


async def wait_until(
    what: str, child: ChildProcess | None, check: Callable[[], Awaitable[bool]], within: float
) -> None:
    """Poll `check()` until it is true, the child dies, or `within` seconds pass."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        if await check():
            return
        if child is not None and child.returncode is not None:
            raise DependencyError(
                f"{what} exited with code {child.returncode}; see {child.log_path}"
            )
        if asyncio.get_running_loop().time() > deadline:
            where = f"; see {child.log_path}" if child is not None else ""
            raise DependencyError(f"{what} did not start within {within:g}s{where}")
        await asyncio.sleep(0.2)


@dataclass
class LocalServers:
    """The servers started here; `stop()` ends every one of them. Each is a `Slot`, so that
    `conveyor dev` can start one again on the same port when it exits."""

    slots: list[Slot] = field(default_factory=list)
    rabbitmq_env: dict[str, str] = field(default_factory=dict)

    async def stop(self) -> None:
        for slot in reversed(self.slots):
            await slot.child.stop()
        self.slots.clear()

    async def _launch(
        self, what: str, spec: ChildSpec, ready: Callable[[], Awaitable[bool]], within: float
    ) -> Slot:
        slot = await Slot.start(spec, ready, within)
        self.slots.append(slot)
        await wait_until(what, slot.child, ready, within)
        return slot

    async def start_mongo(self, data_dir: Path) -> str:
        port = free_port()
        (data_dir / "mongo").mkdir(parents=True, exist_ok=True)
        spec = ChildSpec(
            "nx-27017",
            [venv_script("nx-27017"), "--data-dir", str(data_dir / "mongo"),
             "--host", "127.0.0.1", "--port", str(port),
             "--log-file", str(data_dir / "logs" / "nx-27017.log"),
             "--pid-file", str(data_dir / "nx-27017.pid")],
            log_path=data_dir / "logs" / "mongo.out",
        )
        await self._launch("nx-27017", spec, lambda: port_answers("127.0.0.1", port), 30)
        return f"mongodb://127.0.0.1:{port}"

    async def start_s3(self, data_dir: Path) -> str:
        port = free_port()
        spec = ChildSpec(
            MOTO, [venv_script("moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            log_path=data_dir / "logs" / "moto.out",
        )
        endpoint = f"http://127.0.0.1:{port}"

        async def answers() -> bool:
            try:
                async with aiohttp.ClientSession() as session, session.get(
                    f"{endpoint}/moto-api/", timeout=aiohttp.ClientTimeout(total=1)
                ) as response:
                    return response.status < 500
            except (aiohttp.ClientError, TimeoutError):
                return False

        await self._launch("moto_server", spec, answers, 30)
        return endpoint

    async def start_rabbitmq(
        self, data_dir: Path, advanced: str = "[]."
    ) -> str:
        """A private RabbitMQ node with its own data directory, ports and cookie;
        `advanced` is its advanced.config (Erlang terms), e.g. a consumer timeout."""
        script = next(
            (d / "rabbitmq-server" for d in RABBITMQ_SCRIPT_DIRS
             if (d / "rabbitmq-server").exists()),
            None,
        )
        if script is None:
            raise DependencyError(INSTALL_RABBITMQ_HINT)
        port = free_port()
        base = (data_dir / "rabbitmq").resolve()
        base.mkdir(parents=True, exist_ok=True)
        (base / "enabled_plugins").write_text("[].\n")
        (base / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{port}\nloopback_users = none\n"
        )
        (base / "advanced.config").write_text(advanced + "\n")
        env = {
            **os.environ,
            "HOME": str(base),
            "RABBITMQ_NODENAME": f"conveyor-dev-{port}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
            "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
        }
        spec = ChildSpec("rabbitmq-server", [str(script)],
                         log_path=data_dir / "logs" / "rabbitmq.out", env=env, stop_timeout=30)
        await self._launch(
            "rabbitmq-server", spec, lambda: port_answers("127.0.0.1", port), 90)
        self.rabbitmq_env = env
        return f"amqp://guest:guest@127.0.0.1:{port}/"

    async def rabbitmqctl(self, *args: str) -> str:
        """Run `rabbitmqctl` against the private node this started."""
        script = next(d / "rabbitmqctl" for d in RABBITMQ_SCRIPT_DIRS
                      if (d / "rabbitmqctl").exists())
        env = self.rabbitmq_env
        process = await asyncio.create_subprocess_exec(
            str(script), "-n", env["RABBITMQ_NODENAME"], *args, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        if process.returncode != 0:
            raise DependencyError(f"rabbitmqctl {' '.join(args)} failed: {output.decode()}")
        return output.decode()

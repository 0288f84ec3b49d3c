"""Child processes that die with their parent and stop politely: SIGTERM, then SIGKILL
after a timeout."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from shared.lifetime import die_with_parent

log = structlog.get_logger(__name__)
# Linux sends a child SIGTERM when `conveyor dev` dies, so even a SIGKILLed one leaves
# nothing behind.
_die_with_parent = die_with_parent(signal.SIGTERM)


@dataclass(frozen=True)
class ChildSpec:
    """How to start a child, kept so that it can be started again the same way."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: Mapping[str, str] | None = field(default=None, repr=False)
    stop_timeout: float = 15.0

    async def start(self) -> ChildProcess:
        return await ChildProcess.start(self.name, self.argv, log_path=self.log_path,
                                        env=self.env, stop_timeout=self.stop_timeout)


@dataclass
class ChildProcess:
    name: str
    process: asyncio.subprocess.Process
    log_path: Path
    stop_timeout: float

    @classmethod
    async def start(
        cls,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        stop_timeout: float = 15.0,
    ) -> ChildProcess:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as output:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=asyncio.subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                preexec_fn=_die_with_parent,
                # Its own process group: a Ctrl-C in the terminal reaches only `conveyor dev`,
                # which then stops the children in order.
                start_new_session=True,
            )
        log.debug("started", child=name, pid=process.pid)
        return cls(name, process, log_path, stop_timeout)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    async def stop(self) -> int:
        """SIGTERM the child's whole process group, wait, then SIGKILL what is left."""
        if self.process.returncode is None:
            self._signal_group(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), self.stop_timeout)
            except TimeoutError:
                log.warning("did not stop in time; killing", child=self.name)
                self._signal_group(signal.SIGKILL)
                await self.process.wait()
        # Helpers it left in its group (e.g. Erlang's port programs) go too.
        self._signal_group(signal.SIGKILL)
        return self.process.returncode or 0

    def _signal_group(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            return


@dataclass
class Slot:
    """A child that may be replaced by a fresh start of the same spec; `ready` tells when a
    fresh start serves (e.g. its port answers)."""

    spec: ChildSpec
    child: ChildProcess
    ready: Callable[[], Awaitable[bool]] | None = None
    ready_within: float = 30.0

    @classmethod
    async def start(cls, spec: ChildSpec, ready: Callable[[], Awaitable[bool]] | None = None,
                    ready_within: float = 30.0) -> Slot:
        return cls(spec, await spec.start(), ready, ready_within)

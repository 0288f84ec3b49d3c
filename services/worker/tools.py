"""Tools by name, each with a typed parameter model that validates a job at submission."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.messages import TaskOutput


@dataclass
class ToolContext:
    job_id: str
    task_id: int
    attempt: int
    workspace: str
    report_progress: Callable[[float], Awaitable[None]]
    outputs: list[TaskOutput] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)


class SleepParameters(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    seconds: float = Field(default=0.0, ge=0, le=3600)


async def debug_sleep(context: ToolContext, parameters: SleepParameters) -> None:
    """Wait, reporting progress: the no-op tool of benchmarks and fault tests."""
    if parameters.seconds == 0:
        return
    steps = max(1, min(100, int(parameters.seconds)))
    for step in range(steps):
        await asyncio.sleep(parameters.seconds / steps)
        await context.report_progress(100.0 * (step + 1) / steps)


@dataclass(frozen=True)
class Tool:
    name: str
    parameters: type[BaseModel]
    run: Callable[[ToolContext, Any], Awaitable[None]]


TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in (Tool("debug:sleep", SleepParameters, debug_sleep),)
}

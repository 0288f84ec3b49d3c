"""Tools for tests, demos and load: wait, and write log lines (then fail if asked)."""

from __future__ import annotations

import asyncio

from services.worker.context import ToolContext, ToolError
from shared.errors import TransientError
from shared.toolspecs import DebugFail, DebugLog, DebugSleep


async def debug_sleep(context: ToolContext, parameters: DebugSleep) -> None:
    """Wait, reporting progress about every second."""
    if parameters.seconds == 0:
        return
    steps = max(1, min(3600, int(parameters.seconds)))
    for step in range(steps):
        await asyncio.sleep(parameters.seconds / steps)
        await context.progress(100.0 * (step + 1) / steps, force=True)


async def debug_log(context: ToolContext, parameters: DebugLog) -> None:
    for message in parameters.messages:
        await context.log(message)
    context.result["lines"] = len(parameters.messages)
    if parameters.fail:
        raise ToolError("failed on request (fail: true)")


async def debug_fail(context: ToolContext, parameters: DebugFail) -> None:
    """Fail (transiently or for good), or succeed once past the first `attempts` attempts."""
    if parameters.attempts is not None and context.attempt > parameters.attempts:
        await context.log(f"attempt {context.attempt}: not failing any more")
        return
    await context.log(f"attempt {context.attempt}: {parameters.message}", level="error")
    raise (TransientError if parameters.transient else ToolError)(parameters.message)

"""A tool's failure never shows the worker's scratch directory: it says nothing to the user
and tells an attacker about the worker's disk. Every tool runs wrapped so that the error it
ends with, and every line it logs, name files by their place in the job's workspace."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from services.worker.context import ToolContext, ToolError
from shared.errors import TransientError

ToolFunction = Callable[[ToolContext, Any], Coroutine[Any, Any, None]]


def scratch_roots(scratch: Path) -> list[str]:
    """The scratch directory as text, as given and resolved (a symlinked temp dir)."""
    return list(dict.fromkeys([str(scratch), str(scratch.resolve())]))


def hide_scratch(text: str, roots: list[str]) -> str:
    """`text` with paths under the scratch directory shown relative to it (a fetched input,
    `in/<workspace path>`, as its workspace path)."""
    for root in roots:
        text = text.replace(f"{root}/in/", "").replace(f"{root}/", "").replace(root, ".")
    return text


def without_scratch(exc: Exception, roots: list[str]) -> Exception:
    """`exc`, or a copy of the same class whose text hides the scratch directory."""
    text = str(exc)
    shown = hide_scratch(text, roots)
    if shown == text:
        return exc
    try:
        clean = copy.copy(exc)
        if isinstance(clean, OSError):
            for attribute in ("filename", "filename2"):
                value = getattr(clean, attribute)
                if isinstance(value, str):
                    setattr(clean, attribute, hide_scratch(value, roots))
        else:
            clean.args = (shown,)
        if not any(root in str(clean) for root in roots):
            return clean
    except Exception:  # an exception that cannot be copied (its __init__ wants more)
        pass
    # One that renders its text its own way: the same kind of failure, in our words.
    return (TransientError if isinstance(exc, TransientError) else ToolError)(shown)


def hiding_scratch(tool: ToolFunction) -> ToolFunction:
    @functools.wraps(tool)
    async def run(context: ToolContext, parameters: Any) -> None:
        roots = scratch_roots(context.scratch)
        # Masked like a credential in every line the task logs (the runner masks the same
        # list in the failure it reports, too).
        context.secrets.extend(roots)
        try:
            await tool(context, parameters)
        except Exception as exc:
            clean = without_scratch(exc, roots)
            if clean is exc:
                raise
            raise clean from exc

    return run

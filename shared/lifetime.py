"""Child processes that cannot outlive their parent, however the parent ends (even SIGKILL,
which runs no cleanup code at all)."""

from __future__ import annotations

import ctypes
import ctypes.util
import signal
from collections.abc import Callable
from functools import cache

PR_SET_PDEATHSIG = 1


@cache
def die_with_parent(sig: signal.Signals = signal.SIGKILL) -> Callable[[], None]:
    """A `preexec_fn`: Linux sends the child `sig` when the thread that started it ends.
    Start children from the event loop's thread, which lives as long as the process.
    The C library is found here, in the parent: between fork and exec the child may only
    call what is async-signal-safe (finding a library runs a program)."""
    libc_name = ctypes.util.find_library("c")
    prctl = ctypes.CDLL(libc_name, use_errno=True).prctl if libc_name else None

    def arm() -> None:
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, sig)

    return arm

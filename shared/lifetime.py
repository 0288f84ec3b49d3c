"""Child processes that cannot outlive their parent, however the parent ends (even SIGKILL,
which runs no cleanup code at all)."""

from __future__ import annotations

import ctypes
import ctypes.util
import signal
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: signal.Signals = signal.SIGKILL) -> Callable[[], None]:
    """A `preexec_fn`: Linux sends the child `sig` when the thread that started it ends.
    Start children from the event loop's thread, which lives as long as the process."""

    def arm() -> None:
        libc_name = ctypes.util.find_library("c")
        if libc_name:
            ctypes.CDLL(libc_name, use_errno=True).prctl(PR_SET_PDEATHSIG, sig)

    return arm

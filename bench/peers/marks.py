"""Peers' tasks record that they ran (and when) by appending one line to a file: the bench
counts lines, with no extra server in the way."""

from __future__ import annotations

import os
import time

MARKS = os.environ.get("BENCH_MARKS", "/dev/null")


def mark(published: float) -> None:
    line = f"{published:.6f} {time.time():.6f}\n".encode()
    fd = os.open(MARKS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)

"""`ThreadedStream`: the gate:annotate tool's archive readers are closed when a run stops,
not left for the garbage collector."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from services.worker.tools.annotate import ThreadedStream


def lines(path: Path, opened: list[IO[bytes]], gate: threading.Event | None = None,
          reading: threading.Event | None = None) -> Iterator[bytes]:
    with path.open("rb") as stream:
        opened.append(stream)
        for line in stream:
            if reading is not None:
                reading.set()
            if gate is not None:
                gate.wait(5)
            yield line


def test_close_closes_an_abandoned_reader_and_its_file(tmp_path: Path) -> None:
    path = tmp_path / "input"
    path.write_bytes(b"one\ntwo\nthree\n")
    opened: list[IO[bytes]] = []
    stream = ThreadedStream(lines(path, opened))
    assert stream.next() == b"one\n"
    assert not opened[0].closed
    stream.close()
    assert opened[0].closed


def test_next_gives_none_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "input"
    path.write_bytes(b"only\n")
    stream = ThreadedStream(lines(path, []))
    assert [stream.next(), stream.next(), stream.next()] == [b"only\n", None, None]


def test_close_waits_for_a_step_running_in_another_thread(tmp_path: Path) -> None:
    path = tmp_path / "input"
    path.write_bytes(b"one\ntwo\n")
    opened: list[IO[bytes]] = []
    gate, reading = threading.Event(), threading.Event()
    stream = ThreadedStream(lines(path, opened, gate, reading))
    stepped: list[bytes | None] = []
    step = threading.Thread(target=lambda: stepped.append(stream.next()))
    step.start()
    assert reading.wait(5), "the step never started"
    closer = threading.Thread(target=stream.close)
    closer.start()
    closer.join(0.2)
    # A generator cannot be closed while it runs ("generator already executing"): close
    # waits for the step instead of failing or leaving the file open.
    assert closer.is_alive()
    gate.set()
    step.join(5)
    closer.join(5)
    assert stepped == [b"one\n"]
    assert opened[0].closed


def test_close_of_a_plain_iterator_is_harmless() -> None:
    stream = ThreadedStream(iter([1, 2]))
    assert stream.next() == 1
    stream.close()
    assert stream.next() == 2

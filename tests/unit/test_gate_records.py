"""Pure rules of GATE Cloud-style jobs: states, charges and output names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.gateway.gatecloud.records import (
    MIB,
    SETTLE_GRACE,
    charged_bytes,
    charged_seconds,
    new_gate_job,
    run_seconds,
    state_of,
    worker_done,
)
from services.worker.tools.annotate import output_name
from shared.jobs import Status

PRICES = {"setup": 0.0, "hour": 0.8, "mib": 0.0}


def job(**changes: object) -> dict[str, object]:
    return {**new_gate_job("j1", "n", "o1", "org", "u1", PRICES), **changes}


def test_configuration_decides_reserved_or_ready() -> None:
    assert state_of(job(), None) == "RESERVED"
    assert state_of(job(application={"kind": "upload"}, inputs=[{}]), None) == "RESERVED"
    assert state_of(job(application={"kind": "upload"}, inputs=[{}], outputs=[{}]),
                    None) == "READY"


@pytest.mark.parametrize(("status", "state"), [
    (Status.QUEUED, "ACTIVE"), (Status.RUNNING, "ACTIVE"), (Status.COMPLETED, "COMPLETED"),
    (Status.FAILED, "COMPLETED"), (Status.CANCELLED, "COMPLETED"),
])
def test_a_started_job_follows_its_settled_core_run(status: Status, state: str) -> None:
    assert state_of(job(phase="started", settled_runs=1), {"status": int(status), "runs": 1}
                    ) == state


def test_an_ended_run_is_active_until_settled() -> None:
    ended = {"status": int(Status.CANCELLED), "runs": 2}
    assert state_of(job(phase="started", settled_runs=1), ended) == "ACTIVE"
    assert state_of(job(phase="started", settled_runs=2), ended) == "COMPLETED"


def test_a_run_settles_once_its_worker_wrote_its_last() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    started = {"t1": {"id": 1, "started": now - timedelta(seconds=5)}}
    core = {"finished": now - timedelta(seconds=1), "tasks": started}
    assert not worker_done(core, {"ended": False}, now)
    assert worker_done(core, {"ended": True}, now)
    assert worker_done({**core, "tasks": {"t1": {"id": 1, "started": None}}}, {}, now)
    assert worker_done(core, {}, now + SETTLE_GRACE), "a worker that died never writes it"


def test_suspended_and_deleted_win() -> None:
    running = {"status": int(Status.RUNNING)}
    assert state_of(job(phase="suspended"), running) == "SUSPENDED"
    assert state_of(job(phase="deleted"), running) == "DELETED"


def test_charges_round_up() -> None:
    assert (charged_seconds(0), charged_seconds(0.2), charged_seconds(2.0)) == (0, 1, 2)
    assert (charged_bytes(0), charged_bytes(1), charged_bytes(MIB + 1)) == (0, MIB, 2 * MIB)


def test_run_time_counts_each_started_task_to_its_end() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    core = {"finished": start + timedelta(seconds=9), "tasks": {
        "t1": {"id": 1, "started": start, "finished": start + timedelta(seconds=2)},
        "t2": {"id": 2, "started": start + timedelta(seconds=3), "finished": None},
        "t3": {"id": 3, "started": None, "finished": None},
    }}
    assert run_seconds(core, start + timedelta(seconds=60)) == 2 + 6


@pytest.mark.parametrize(("name", "key"), [
    ("notes/a.txt", "notes/a.txt"), ("../../etc/passwd", "etc/passwd"),
    ("/abs/./b.html", "abs/b.html"), ("http://example.com/x/index.html",
                                      "http/example.com/x/index.html"),
    ("..", "document"), ("a\\..\\b.txt", "a/b.txt"),
])
def test_document_names_never_climb_out_of_the_output_prefix(name: str, key: str) -> None:
    assert output_name(name) == key

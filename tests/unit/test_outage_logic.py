"""The pure parts of outage handling: what a message shows of a store URL, how an outbox
mark grows, and what a stop writes."""

from __future__ import annotations

from pymongo.errors import ServerSelectionTimeoutError

from services.gateway.outbox import control_mark
from shared.errors import DependencyUnavailable
from shared.jobs import cancellation, new_task
from shared.messages import JobControl
from shared.store import reason_of, shown_url


def test_a_store_url_is_shown_without_credentials_or_options() -> None:
    assert shown_url("mongodb://app:s3cret@db1:27017,db2:27017/conveyor?authSource=admin"
                     "&authMechanismProperties=AWS_SESSION_TOKEN:tok") == (
        "mongodb://db1:27017,db2:27017/conveyor")
    assert shown_url("mongodb+srv://u:p@cluster.example.net/") == (
        "mongodb+srv://cluster.example.net/")
    assert shown_url("mongodb://127.0.0.1:27017") == "mongodb://127.0.0.1:27017"


def test_the_reason_drops_the_topology_description_and_is_never_blank() -> None:
    exc = ServerSelectionTimeoutError(
        "127.0.0.1:1: [Errno 111] Connection refused, Timeout: 2.0s, Topology Description: <…>")
    assert reason_of(exc) == "127.0.0.1:1: [Errno 111] Connection refused"
    assert reason_of(TimeoutError()) == "TimeoutError"


def test_a_client_is_told_which_server_and_when_to_retry_but_no_details() -> None:
    down = DependencyUnavailable("mongodb", "MongoDB did not answer: 10.0.0.7:27017 refused")
    assert down.public == "MongoDB is unavailable; try again in 5 s"
    assert "10.0.0.7" not in down.public


def test_a_control_mark_keeps_what_still_waits_and_counts_up() -> None:
    stop = JobControl(job_id="j1", action="stop", attempts={1: 2})
    restart = JobControl(job_id="j1", action="restart")
    first = control_mark({"_id": "j1", "outbox": 0, "outbox_messages": [], "outbox_seq": 3},
                         stop)
    assert first["outbox"] == 1
    assert first["outbox_seq"] == 4
    assert [m["action"] for m in first["outbox_messages"]] == ["stop"]
    second = control_mark({"_id": "j1", **first}, restart)
    assert [m["action"] for m in second["outbox_messages"]] == ["stop", "restart"]
    assert second["outbox_seq"] == 5
    # As stored and read back, the stop is the same message (same id: a duplicate is one).
    assert JobControl.model_validate(second["outbox_messages"][0]) == stop
    # A job stored before the outbox kept messages: its submission was announced already.
    legacy = control_mark({"_id": "j1", "outbox": 0}, stop)
    assert legacy["outbox_seq"] == 1


def test_a_stop_is_fenced_on_every_task_and_cancels_only_unfinished_ones() -> None:
    done, running = new_task(1, "debug:sleep", {}), new_task(2, "debug:sleep", {})
    done.update(status=2, attempt=1)
    running.update(status=1, attempt=3, dispatched=1)
    condition, changes, attempts = cancellation(
        {"_id": "j1", "status": 1, "tasks": {"t1": done, "t2": running}})
    assert condition == {"_id": "j1", "status": 1, "tasks.t1.status": 2, "tasks.t1.attempt": 1,
                         "tasks.t2.status": 1, "tasks.t2.attempt": 3}
    assert changes == {"status": 4, "tasks.t2.status": 4, "tasks.t2.error": {
        "class": "Cancelled", "message": "stopped on request"}}
    assert attempts == {1: 1, 2: 3}

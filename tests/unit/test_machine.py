"""The scheduler's compare-and-set transitions on an in-memory store: each event moves the
job once, and duplicates or late messages of an earlier attempt or run change nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.gateway.jobcontrol import rerun_job
from shared.jobs import Status, task_key
from shared.messages import TaskDispatch, TaskProgress, TaskSucceeded
from shared.toolspecs import DEFAULT_RETRY
from shared.topology import TASKS_EXCHANGE
from tests.fakes.scheduler import JOB, TOOL, C, F, Q, R, Scheduler, X, statuses


@pytest.fixture
def s() -> Scheduler:
    return Scheduler()


async def test_a_new_job_dispatches_its_first_task_once(s: Scheduler) -> None:
    job = await s.submit()
    assert job["tasks"][task_key(1)]["dispatched"] == 1
    assert job["tasks"][task_key(1)]["attempt"] == 1
    assert job["waiting_since"] is not None
    [sent] = s.publisher.sent
    assert (sent.exchange, sent.routing_key) == (TASKS_EXCHANGE, "local")
    assert isinstance(sent.envelope, TaskDispatch)
    assert (sent.envelope.task_id, sent.envelope.attempt, sent.envelope.tool) == (1, 1, TOOL)
    # The same intake delivered twice, or by a second replica with the job as first read.
    await s.machine.advance(await s.job(), interrupted=False)
    first_read = {**job, "tasks": {**job["tasks"], task_key(1): {**job["tasks"][task_key(1)],
                                                          "dispatched": 0, "attempt": 0}}}
    await s.machine.advance(first_read, interrupted=False)
    assert len(s.publisher.sent) == 1
    assert (await s.task(1))["attempt"] == 1


async def test_a_start_runs_the_task_and_its_repeat_changes_nothing(s: Scheduler) -> None:
    await s.submit()
    await s.start()
    job = await s.job()
    assert statuses(job) == (R, [R, Q])
    assert (job["running_task"], job["running_worker"], job["waiting_since"]) == (1, "w1", None)
    assert job["tasks"][task_key(1)]["started"] is not None
    assert job["heartbeat"] is not None
    await s.start()  # the worker's report delivered twice
    assert s.cancels() == []
    assert await s.job() == job


async def test_a_second_worker_starting_the_same_attempt_is_told_to_stop(s: Scheduler) -> None:
    await s.submit()
    await s.start(worker="w1")
    before = await s.job()
    await s.start(worker="w2")
    [cancel] = s.cancels()
    assert (cancel.worker_id, cancel.task_id, cancel.attempts) == ("w2", 1, {1: 1})
    assert await s.job() == before


async def test_a_start_of_an_earlier_attempt_is_refused(s: Scheduler) -> None:
    await s.submit()
    await s.fail(retryable=True)  # attempt 2 is dispatched
    before = await s.job()
    await s.start(attempt=1, worker="late")
    assert [c.worker_id for c in s.cancels()] == ["late"]
    assert await s.job() == before


async def test_success_dispatches_the_next_task_then_completes_the_job(s: Scheduler) -> None:
    await s.submit()
    await s.start(1)
    await s.succeed(1)
    job = await s.job()
    assert statuses(job) == (R, [C, Q])
    assert job["tasks"][task_key(1)]["result"] == {"n": 1}
    assert job["tasks"][task_key(1)]["progress"] == 100.0
    assert [(d.task_id, d.attempt) for d in s.dispatches()] == [(1, 1), (2, 1)]
    await s.succeed(1)  # duplicate: task 2 is not dispatched again
    assert len(s.dispatches()) == 2
    await s.start(2)
    await s.succeed(2)
    job = await s.job()
    assert statuses(job) == (C, [C, C])
    assert job["finished"] is not None
    assert [f["_id"] for f in s.finished] == [JOB]
    await s.succeed(2)  # a late duplicate of the last success finishes nothing twice
    assert len(s.finished) == 1
    assert len(s.dispatches()) == 2


async def test_a_retryable_failure_dispatches_a_new_attempt_after_a_delay(s: Scheduler) -> None:
    await s.submit()
    await s.start()
    await s.fail(retryable=True)
    task = await s.task(1)
    assert Status(task["status"]) is Q
    assert (task["attempt"], task["dispatched"]) == (2, 1)
    assert task["error"] == {"class": "Boom", "message": "it broke", "attempt": 1}
    delayed = s.publisher.sent[-1]
    assert delayed.exchange == ""
    assert delayed.routing_key.startswith("unit.delay.tasks.local.")
    assert delayed.routing_key in s.publisher.fake_channel.queues
    assert isinstance(delayed.envelope, TaskDispatch)
    assert delayed.envelope.attempt == 2
    await s.fail(retryable=True)  # the same failure again: no third attempt
    assert (await s.task(1))["attempt"] == 2
    assert len(s.publisher.sent) == 2


async def test_a_failure_of_an_earlier_attempt_changes_nothing(s: Scheduler) -> None:
    await s.submit()
    await s.fail(retryable=True)
    await s.start(attempt=2)
    before = await s.job()
    await s.fail(attempt=1)
    await s.machine.on_progress(TaskProgress(job_id=JOB, task_id=1, attempt=1, progress=50))
    await s.succeed(attempt=1)
    assert await s.job() == before


async def test_a_permanent_failure_fails_the_job_and_cancels_what_follows(s: Scheduler) -> None:
    await s.submit(tasks=3)
    await s.start()
    await s.fail(retryable=False)
    job = await s.job()
    assert statuses(job) == (F, [F, X, X])
    assert [f["_id"] for f in s.finished] == [JOB]
    await s.fail(retryable=False)
    assert len(s.finished) == 1


async def test_retries_end_when_the_tools_policy_is_spent(s: Scheduler) -> None:
    await s.submit(tasks=1)
    for attempt in range(1, DEFAULT_RETRY.max_attempts + 1):
        await s.start(attempt=attempt)
        await s.fail(attempt=attempt, retryable=True)
    assert statuses(await s.job()) == (F, [F])
    assert len(s.dispatches()) == DEFAULT_RETRY.max_attempts


async def test_progress_of_the_running_attempt_is_recorded(s: Scheduler) -> None:
    await s.submit()
    await s.start()
    await s.machine.on_progress(TaskProgress(job_id=JOB, task_id=1, attempt=1, progress=40))
    assert (await s.task(1))["progress"] == 40


async def test_giving_up_a_lost_task_stops_its_worker_and_retries_it(s: Scheduler) -> None:
    await s.submit()
    await s.start(worker="w1")
    await s.machine.give_up(await s.job(), "WorkerLost", "no heartbeat")
    [cancel] = s.cancels()
    assert (cancel.worker_id, cancel.attempts) == ("w1", {1: 1})
    task = await s.task(1)
    assert (Status(task["status"]), task["attempt"]) == (Q, 2)
    assert task["error"]["class"] == "WorkerLost"
    await s.machine.give_up(await s.job(), "WorkerLost", "again")  # not running: nothing
    assert len(s.cancels()) == 1
    assert (await s.task(1))["attempt"] == 2


async def test_events_of_an_unknown_job_change_nothing(s: Scheduler) -> None:
    await s.submit()
    before: Any = await s.job()
    await s.machine.on_succeeded(TaskSucceeded(job_id="other", task_id=1, attempt=1), False)
    await s.succeed(task_id=9)
    assert await s.job() == before
    assert len(s.publisher.sent) == 1


async def test_a_lost_dispatch_is_resent_once_under_the_same_attempt(s: Scheduler) -> None:
    await s.submit()
    # The dispatch has waited a minute, as the sweeper finds it (dates are in milliseconds).
    waited = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    await s.store.jobs.update_one({"_id": JOB}, {"$set": {"waiting_since": waited}})
    job = await s.job()
    assert await s.machine.resend(job, 1)
    assert [(d.task_id, d.attempt) for d in s.dispatches()] == [(1, 1), (1, 1)]
    # A second sweeper replica read the job before the first one re-armed it.
    assert not await s.machine.resend(job, 1)
    assert len(s.dispatches()) == 2


async def test_late_messages_of_the_previous_run_change_nothing(s: Scheduler) -> None:
    await s.submit(tasks=1)
    await s.start()
    await s.succeed()
    restarted = await rerun_job(s.store, s.publisher, await s.job(), "u1")
    await s.machine.advance(restarted, interrupted=False)
    task = await s.task(1)
    assert (Status(task["status"]), task["attempt"], task["attempt_base"]) == (Q, 2, 1)
    before = await s.job()
    await s.start(attempt=1, worker="old")
    await s.succeed(attempt=1)
    await s.fail(attempt=1)
    assert await s.job() == before
    await s.start(attempt=2)
    assert statuses(await s.job()) == (R, [R])

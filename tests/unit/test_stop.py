"""A `job.control` stop in the scheduler (`Stopper`): one compare-and-set fenced by the run,
then the workers are told; a stop no worker hears is sent again."""

from __future__ import annotations

import pytest

from services.scheduler.control import Stopper
from shared.consumer import Delivery
from shared.errors import Retry
from shared.jobs import task_key
from shared.messages import JobControl
from shared.topology import CONTROL_EXCHANGE
from tests.fakes import FakeCollection, unroutable
from tests.fakes.scheduler import JOB, C, Scheduler, X, statuses


@pytest.fixture
def s() -> Scheduler:
    return Scheduler()


async def stop(s: Scheduler, run: int | None = 1, attempt: int = 1) -> None:
    order = JobControl(job_id=JOB, action="stop", run=run)
    await Stopper(s.store, s.publisher).on_stop(order, Delivery(order, attempt, False))


async def test_a_stop_cancels_the_job_and_tells_the_workers(s: Scheduler) -> None:
    await s.submit()
    await s.start()
    await stop(s)
    assert statuses(await s.job()) == (X, [X, X])
    [cancel] = s.cancels()
    assert (cancel.attempts, cancel.worker_id) == ({1: 1, 2: 0}, None)
    await s.succeed()  # the task's success arriving after the stop changes nothing
    assert statuses(await s.job()) == (X, [X, X])


async def test_a_stop_of_an_earlier_run_changes_nothing(s: Scheduler) -> None:
    await s.submit()
    await s.store.jobs.update_one({"_id": JOB}, {"$set": {"runs": 2}})
    before = await s.job()
    await stop(s, run=1)
    assert await s.job() == before
    assert s.cancels() == []


async def test_a_stop_no_worker_hears_is_sent_again_later(s: Scheduler) -> None:
    await s.submit()
    s.publisher.fail(unroutable(CONTROL_EXCHANGE))
    with pytest.raises(Retry):
        await stop(s)
    assert statuses(await s.job()) == (X, [X, X])


async def test_a_task_that_ends_while_stopping_keeps_its_outcome(s: Scheduler) -> None:
    await s.submit()
    await s.start()

    async def task_succeeds() -> None:  # between the stop's read and its write
        await s.succeed(1)

    jobs = s.store.jobs
    assert isinstance(jobs, FakeCollection)
    jobs.before_next("update_one", task_succeeds)
    await stop(s)
    job = await s.job()
    assert statuses(job) == (X, [C, X])
    assert job["tasks"][task_key(1)]["result"] == {"n": 1}
    # The workers are told the attempts as stopped: task 2 had been dispatched meanwhile.
    assert s.cancels()[-1].attempts == {1: 1, 2: 1}

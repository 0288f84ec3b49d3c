"""What a job needs next, decided from its document alone (no I/O, so it is unit-tested).

Every handler of the scheduler ends by asking this and doing what it says with a conditional
update. Asking again after a crash, a duplicate or a redelivery gives the same answer, which
is what makes the scheduler idempotent."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from shared.jobs import Status, ordered_tasks
from shared.store import Document


class Action(Enum):
    NOTHING = "nothing"
    DISPATCH = "dispatch"  # the task was never sent in this run: send it
    RESEND = "resend"  # the task was sent, but the send may have been lost: send it again
    COMPLETE = "complete"  # every task completed
    FAIL = "fail"  # a task failed: fail the job, cancel the tasks after it


@dataclass(frozen=True)
class Step:
    action: Action
    task_id: int | None = None


def next_step(job: Document, may_have_been_interrupted: bool) -> Step:
    """`may_have_been_interrupted`: this message was delivered before (a redelivery or a
    retry), so a dispatch recorded by that earlier delivery may never have been published."""
    if Status(job["status"]).is_final:
        return Step(Action.NOTHING)
    for task in ordered_tasks(job):
        status = Status(task["status"])
        if status is Status.COMPLETED:
            continue
        if status in {Status.FAILED, Status.CANCELLED}:
            return Step(Action.FAIL, task["id"])
        if status is Status.QUEUED:
            if not task["dispatched"]:
                return Step(Action.DISPATCH, task["id"])
            if may_have_been_interrupted:
                return Step(Action.RESEND, task["id"])
        return Step(Action.NOTHING)
    return Step(Action.COMPLETE)

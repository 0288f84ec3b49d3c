from typing import Any

import pytest

from services.scheduler.plan import Action, Step, next_step
from shared.jobs import Status, task_key


def job(*tasks: tuple[Status, int], status: Status = Status.RUNNING) -> dict[str, Any]:
    return {"status": int(status), "tasks": {
        task_key(index + 1): {"id": index + 1, "status": int(s), "dispatched": d}
        for index, (s, d) in enumerate(tasks)
    }}


Q, R, C, F, X = Status.QUEUED, Status.RUNNING, Status.COMPLETED, Status.FAILED, Status.CANCELLED


@pytest.mark.parametrize(
    ("document", "interrupted", "expected"),
    [
        (job((Q, 0), (Q, 0), status=Q), False, Step(Action.DISPATCH, 1)),
        (job((Q, 1), (Q, 0)), False, Step(Action.NOTHING)),
        (job((Q, 1), (Q, 0)), True, Step(Action.RESEND, 1)),
        (job((R, 1), (Q, 0)), True, Step(Action.NOTHING)),
        (job((C, 1), (Q, 0)), False, Step(Action.DISPATCH, 2)),
        (job((C, 1), (Q, 1)), True, Step(Action.RESEND, 2)),
        (job((C, 1), (C, 1)), False, Step(Action.COMPLETE)),
        (job((C, 1), (F, 1), (Q, 0)), False, Step(Action.FAIL, 2)),
        (job((X, 0), (Q, 0)), False, Step(Action.FAIL, 1)),
        (job((C, 1), (C, 1), status=C), True, Step(Action.NOTHING)),
        (job((F, 1), (X, 0), status=F), True, Step(Action.NOTHING)),
    ],
)
def test_next_step(document: dict[str, Any], interrupted: bool, expected: Step) -> None:
    assert next_step(document, interrupted) == expected


def test_tasks_are_taken_in_id_order_whatever_the_stored_order() -> None:
    document = job((C, 1), (Q, 0))
    document["tasks"] = dict(reversed(list(document["tasks"].items())))
    assert next_step(document, False) == Step(Action.DISPATCH, 2)

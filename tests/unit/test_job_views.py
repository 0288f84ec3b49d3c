"""The Jobs API's core views through aiohttp's test client, on the fake store and publisher:
what submit refuses and why, what each caller may see across organizations, and how stop and
restart answer."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from services.scheduler.control import Stopper
from shared.consumer import Delivery
from shared.jobs import Status
from shared.messages import JobControl, JobSubmitted
from shared.topology import JOBS_EXCHANGE
from tests.fakes import CONNECTION_LOST, Sent, unroutable
from tests.fakes.gateway import Account, FakeGateway, fake_gateway

JOBS = "/api/jobs/"
SLEEP = {"tool": "debug:sleep", "parameters": {"seconds": 0}}


class Api:
    def __init__(self, gateway: FakeGateway, client: TestClient[Any, Any], ann: Account,
                 bob: Account, both: Account) -> None:
        self.gateway, self.client = gateway, client
        self.ann, self.bob, self.both = ann, bob, both  # in acme, in globex, in both

    async def submit(self, who: Account, body: Any = None, expect: int = 201) -> Any:
        body = {"tasks": [SLEEP]} if body is None else body
        response = await self.client.post(JOBS, json=body, headers=who.headers)
        answer = await response.json()
        assert response.status == expect, answer
        return answer

    async def get(self, who: Account, path: str, expect: int = 200) -> Any:
        response = await self.client.get(path, headers=who.headers)
        answer = await response.json()
        assert response.status == expect, answer
        return answer

    async def post(self, who: Account, path: str, expect: int) -> Any:
        response = await self.client.post(path, headers=who.headers)
        answer = await response.json()
        assert response.status == expect, answer
        return answer

    async def set_status(self, job_id: str, status: Status) -> None:
        await self.gateway.store.jobs.update_one(
            {"_id": job_id}, {"$set": {"status": int(status)}})


@pytest.fixture
async def api(aiohttp_client: Any) -> Api:
    gateway = fake_gateway()
    await gateway.organization("o-acme", "acme")
    await gateway.organization("o-globex", "globex")
    ann = await gateway.account("ann", "o-acme")
    bob = await gateway.account("bob", "o-globex")
    both = await gateway.account("cat", "o-acme", "o-globex")
    return Api(gateway, await aiohttp_client(gateway.app), ann, bob, both)


def fields(answer: Any) -> list[str]:
    return [error["field"] for error in answer["errors"]]


@pytest.mark.parametrize(("body", "field"), [
    ([SLEEP], "body"),
    ({}, "tasks"),
    ({"tasks": []}, "tasks"),
    ({"tasks": [{"tool": "no:such-tool"}]}, "tasks.0.tool"),
    ({"tasks": [{"tool": "debug:sleep", "parameters": {"seconds": "soon"}}]},
     "tasks.0.parameters.seconds"),
    ({"tasks": [SLEEP], "region": "mars"}, "region"),
    ({"tasks": [SLEEP], "surprise": 1}, "surprise"),
])
async def test_submit_names_the_field_at_fault(api: Api, body: Any, field: str) -> None:
    answer = await api.submit(api.ann, body, expect=400)
    assert field in fields(answer)
    assert await api.gateway.store.jobs.count_documents({}) == 0
    assert api.gateway.publisher.sent == []


@pytest.mark.parametrize("raw", [b"", b"  ", b"{not json", b"\xff\xfe"])
async def test_a_body_that_is_not_json_is_refused(api: Api, raw: bytes) -> None:
    response = await api.client.post(JOBS, data=raw, headers=api.ann.headers)
    answer = await response.json()
    assert (response.status, fields(answer)) == (400, ["body"])


async def test_submit_needs_an_api_key(api: Api) -> None:
    response = await api.client.post(JOBS, json={"tasks": [SLEEP]})
    assert response.status == 401
    bad = await api.client.post(JOBS, json={"tasks": [SLEEP]},
                                headers={"Authorization": "api-key nope"})
    assert bad.status == 401


async def test_submit_into_an_organization_of_others_is_forbidden(api: Api) -> None:
    by_id = await api.submit(api.ann, {"tasks": [SLEEP], "organization_id": "o-globex"}, 403)
    by_name = await api.submit(api.ann, {"tasks": [SLEEP], "organization": "globex"}, 403)
    assert "o-globex" in by_id["error"]
    assert "globex" in by_name["error"]
    mixed = await api.submit(api.both, {"tasks": [SLEEP], "organization_id": "o-acme",
                                        "organization": "globex"}, 400)
    assert fields(mixed) == ["organization"]
    several = await api.submit(api.both, {"tasks": [SLEEP]}, 400)
    assert fields(several) == ["organization_id"]
    assert await api.gateway.store.jobs.count_documents({}) == 0


async def test_a_submitted_job_is_stored_and_announced(api: Api) -> None:
    job = await api.submit(api.both, {"tasks": [SLEEP, SLEEP], "organization": "globex"})
    stored = await api.gateway.store.jobs.find_one({"_id": job["id"]})
    assert stored is not None
    assert (stored["organization_id"], stored["user_id"], stored["outbox"]) == (
        "o-globex", "cat", 0)
    assert (job["status"], job["status_text"], len(job["tasks"])) == (
        int(Status.QUEUED), Status.QUEUED.text, 2)
    [sent] = api.gateway.publisher.sent
    assert (sent.exchange, sent.routing_key) == (JOBS_EXCHANGE, "job.submitted")
    assert isinstance(sent.envelope, JobSubmitted)
    assert (sent.envelope.job_id, sent.envelope.organization_id) == (job["id"], "o-globex")


async def test_a_job_submitted_while_the_broker_is_down_waits_in_the_outbox(api: Api) -> None:
    api.gateway.publisher.fail(CONNECTION_LOST("broker down"))
    job = await api.submit(api.ann)
    stored = await api.gateway.store.jobs.find_one({"_id": job["id"]})
    assert stored is not None
    assert stored["outbox"] == 1
    assert api.gateway.publisher.sent == []


async def test_a_job_is_seen_only_in_its_organization(api: Api) -> None:
    job = await api.submit(api.ann)
    path = f"{JOBS}{job['id']}/"
    assert (await api.get(api.ann, path))["id"] == job["id"]
    assert (await api.get(api.both, path))["id"] == job["id"]
    missing = await api.get(api.bob, path, expect=404)
    assert job["id"] in missing["error"]
    await api.get(api.ann, f"{JOBS}no-such-job/", expect=404)
    for action in ("stop", "restart", "resubmit"):
        await api.post(api.bob, f"{path}{action}/", expect=404)


async def test_the_list_holds_the_callers_jobs_newest_first(api: Api) -> None:
    first = await api.submit(api.ann)
    second = await api.submit(api.ann)
    theirs = await api.submit(api.bob)
    await api.set_status(first["id"], Status.COMPLETED)
    mine = await api.get(api.ann, JOBS)
    assert mine["count"] == 2
    assert [j["id"] for j in mine["results"]] == [second["id"], first["id"]]
    assert [j["id"] for j in (await api.get(api.bob, JOBS))["results"]] == [theirs["id"]]
    assert (await api.get(api.both, JOBS))["count"] == 3
    done = await api.get(api.ann, f"{JOBS}?status=Completed")
    assert [j["id"] for j in done["results"]] == [first["id"]]
    page = await api.get(api.ann, f"{JOBS}?page_size=1")
    assert page["next"] is not None
    assert "page=2" in page["next"]
    assert page["previous"] is None


@pytest.mark.parametrize(("query", "field"), [
    ("status=Sleeping", "status"), ("page_size=0", "page_size"),
    ("page_size=101", "page_size"), ("page=zero", "page"),
])
async def test_a_bad_list_query_names_its_field(api: Api, query: str, field: str) -> None:
    answer = await api.get(api.ann, f"{JOBS}?{query}", expect=400)
    assert fields(answer) == [field]


def scheduler_stops(api: Api) -> None:
    """The scheduler's part of a stop, run as its message is published."""
    stopper = Stopper(api.gateway.store, api.gateway.publisher)

    async def on_sent(sent: Sent) -> None:
        order = sent.envelope
        if isinstance(order, JobControl) and order.action == "stop":
            await stopper.on_stop(order, Delivery(order, 1, False))

    api.gateway.publisher.on_sent = on_sent


async def test_a_stop_answers_200_once_the_scheduler_cancelled_the_job(api: Api) -> None:
    scheduler_stops(api)
    job = await api.submit(api.ann)
    stopped = await api.post(api.ann, f"{JOBS}{job['id']}/stop/", expect=200)
    assert stopped["status"] == int(Status.CANCELLED)
    orders = [m for m in api.gateway.publisher.envelopes(JOBS_EXCHANGE)
              if isinstance(m, JobControl)]
    assert [(o.action, o.run, o.requested_by) for o in orders] == [("stop", 1, "ann")]
    again = await api.post(api.ann, f"{JOBS}{job['id']}/stop/", expect=409)
    assert Status.CANCELLED.text in again["error"]


async def test_a_stop_while_the_broker_is_down_is_accepted_for_later(api: Api) -> None:
    job = await api.submit(api.ann)
    api.gateway.publisher.fail(CONNECTION_LOST("broker down"))
    accepted = await api.post(api.ann, f"{JOBS}{job['id']}/stop/", expect=202)
    assert accepted["status"] == int(Status.QUEUED)
    stored = await api.gateway.store.jobs.find_one({"_id": job["id"]})
    assert stored is not None
    assert stored["outbox"] == 1
    assert [m["action"] for m in stored["outbox_messages"]] == ["stop"]


async def test_a_restart_runs_a_finished_job_again(api: Api) -> None:
    job = await api.submit(api.ann)
    path = f"{JOBS}{job['id']}/restart/"
    running = await api.post(api.ann, path, expect=409)
    assert Status.QUEUED.text in running["error"]
    await api.set_status(job["id"], Status.FAILED)
    restarted = await api.post(api.ann, path, expect=200)
    assert (restarted["id"], restarted["status"]) == (job["id"], int(Status.QUEUED))
    stored = await api.gateway.store.jobs.find_one({"_id": job["id"]})
    assert stored is not None
    assert stored["runs"] == 2
    last = api.gateway.publisher.sent[-1].envelope
    assert isinstance(last, JobControl)
    assert (last.action, last.job_id) == ("restart", job["id"])


async def test_a_resubmit_copies_a_finished_job_under_a_new_id(api: Api) -> None:
    job = await api.submit(api.ann, {"tasks": [SLEEP], "tags": ["x"]})
    path = f"{JOBS}{job['id']}/resubmit/"
    await api.post(api.ann, path, expect=409)
    await api.set_status(job["id"], Status.COMPLETED)
    copy = await api.post(api.ann, path, expect=201)
    assert copy["id"] != job["id"]
    assert copy["tags"] == ["x"]
    assert json.dumps(copy["tasks"][0]["parameters"]) == json.dumps(SLEEP["parameters"])


async def test_a_store_that_does_not_answer_is_a_503_naming_it(api: Api) -> None:
    api.gateway.store.down = True
    response = await api.client.get(JOBS, headers=api.ann.headers)
    answer = await response.json()
    assert (response.status, answer["dependency"]) == (503, "mongodb")
    assert "Retry-After" in response.headers


async def test_an_announcement_no_queue_takes_waits_in_the_outbox(api: Api) -> None:
    api.gateway.publisher.fail(unroutable(JOBS_EXCHANGE, "job.submitted"), times=1)
    job = await api.submit(api.ann)
    stored = await api.gateway.store.jobs.find_one({"_id": job["id"]})
    assert stored is not None
    assert stored["outbox"] == 1
    await api.submit(api.ann)  # the broker takes the next one
    assert len(api.gateway.publisher.sent) == 1

"""Outages of the broker and the store, caused for real: a private RabbitMQ node stopped
with `rabbitmqctl stop_app`, a private nx-27017 killed with SIGKILL. What the gateway
accepted is carried out once the server is back; what it cannot do answers 503 with
`Retry-After` naming the server, never 500."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from services.dev.servers import LocalServers, free_port
from services.logger.main import serve as serve_logger
from shared.store import open_store
from tests.conftest import SettingsFactory
from tests.faults.conftest import env_for, private_url
from tests.faults.faults import StoreProcess
from tests.platform import Client, backend, gateway_for, service, submit, wait_job
from tests.processes import conveyor

FAST = {"heartbeat_seconds": 0.5, "task_silence_seconds": 30.0}
QUICK = {"tasks": [{"tool": "debug:sleep", "parameters": {"seconds": 0}}]}
# What a request may take to answer 503 once a server is gone.
ANSWER_WITHIN = 4.0


async def timed_post(client: Client, path: str, headers: dict[str, str],
                     **kwargs: Any) -> tuple[int, dict[str, Any], float]:
    started = time.monotonic()
    response = await client.post(path, headers=headers, **kwargs)
    return response.status, await response.json(), time.monotonic() - started


async def test_stop_and_restart_while_the_broker_is_down_are_carried_out_once_it_is_back(
    private_broker: LocalServers, settings_factory: SettingsFactory, aiohttp_client: Any
) -> None:
    # One worker slot: the restarted job can only run once the 60 s sleep was interrupted.
    settings = settings_factory(**FAST, amqp_url=private_url(private_broker),
                                worker_concurrency=1)
    client, account = await gateway_for(settings, aiohttp_client)
    async with backend(settings, logger=False):
        finished = await submit(client, account, QUICK)
        await wait_job(client, account, finished["id"])
        sleeper = await submit(client, account, {"tasks": [
            {"tool": "debug:sleep", "parameters": {"seconds": 60}}]})
        await wait_job(client, account, sleeper["id"], statuses={1})
        await private_broker.rabbitmqctl("stop_app")
        try:
            stop = await timed_post(client, f"/api/jobs/{sleeper['id']}/stop/", account.headers)
            restart = await timed_post(client, f"/api/jobs/{finished['id']}/restart/",
                                       account.headers)
        finally:
            await private_broker.rabbitmqctl("start_app")
        back = time.monotonic()
        # Accepted, not yet carried out: the scheduler, which stops jobs, is out of reach.
        assert stop[0] == 202, stop
        assert restart[0] == 200, restart
        rerun = await wait_job(client, account, finished["id"], within=40)
        rerun_after = time.monotonic() - back
        stopped = await wait_job(client, account, sleeper["id"])
    assert (stop[1]["status_text"], [t["status"] for t in stop[1]["tasks"]]) == ("Running",
                                                                                 [1])
    assert restart[1]["status_text"] == "Queued"
    assert stop[2] < 6, stop[2]
    assert restart[2] < 6, restart[2]
    assert rerun["status_text"] == "Completed"
    assert stopped["status_text"] == "Cancelled"
    # Well inside the 60 s sleep: the stop reached the worker once the broker was back.
    assert rerun_after < 25, rerun_after
    async with open_store(settings, "test") as store:
        assert await store.jobs.count_documents({"outbox": 1}) == 0
    print(f"broker outage: stop answered in {stop[2]:.1f} s, restart in {restart[2]:.1f} s; "
          f"the sleep was interrupted and the rerun Completed {rerun_after:.1f} s after "
          "start_app")


async def test_a_killed_store_is_a_503_naming_it_and_everything_works_once_it_is_back(
    private_store: StoreProcess, settings_factory: SettingsFactory, aiohttp_client: Any
) -> None:
    settings = settings_factory(mongo_url=private_store.url, logger_port=free_port())
    client, account = await gateway_for(settings, aiohttp_client)
    async with service(serve_logger, settings):
        job = await submit(client, account, QUICK)
        await private_store.kill()
        calls = [
            ("POST", "/api/jobs/", QUICK), ("GET", f"/api/jobs/{job['id']}/", None),
            ("GET", "/api/jobs/", None), ("POST", f"/api/jobs/{job['id']}/stop/", None),
            ("POST", f"/api/jobs/{job['id']}/restart/", None),
            ("GET", f"/api/jobs/{job['id']}/tasks/1/logs/", None),
            ("GET", f"/api/job/{job['id']}/log", None),
        ]
        answers = {}
        for method, path, body in calls:
            started = time.monotonic()
            response = await client.request(method, path, json=body, headers=account.headers)
            answers[f"{method} {path}"] = (response.status, response.headers.get("Retry-After"),
                                           await response.json(), time.monotonic() - started)
        await private_store.start()
        restarted = time.monotonic()
        deadline = restarted + 30
        while (again := await client.get(f"/api/jobs/{job['id']}/",
                                         headers=account.headers)).status != 200:
            assert again.status == 503, await again.text()
            assert time.monotonic() < deadline, "the gateway did not recover"
            await asyncio.sleep(0.2)
        recovered = time.monotonic() - restarted
        after = await client.post("/api/jobs/", json=QUICK, headers=account.headers)
        logs = await client.get(f"/api/jobs/{job['id']}/tasks/1/logs/", headers=account.headers)
        assert (after.status, logs.status) == (201, 200), (await after.text(), await logs.text())
    for call, (status, retry_after, body, took) in answers.items():
        assert status == 503, (call, body)
        assert retry_after is not None, call
        assert int(retry_after) > 0, call
        assert body["dependency"] == "mongodb", (call, body)
        assert body["error"] == f"MongoDB is unavailable; try again in {retry_after} s", body
        assert took < ANSWER_WITHIN, (call, took)
    slowest = max(took for *_, took in answers.values())
    print(f"store killed: {len(answers)} routes answered 503 within {slowest:.2f} s; "
          f"200 again {recovered:.1f} s after it was started again")


async def test_the_start_up_message_names_the_store_and_why(
    settings_factory: SettingsFactory, tmp_path: Path
) -> None:
    """The scheduler, started against a store that is not there: its one line names the URL
    (without the password) and the reason."""
    port = free_port()
    # A copy: the test's own cleanup still uses the real store.
    settings = settings_factory().model_copy(update={
        "mongo_url": f"mongodb://conveyor:hunter2@127.0.0.1:{port}/?authSource=admin"})
    log = tmp_path / "scheduler.log"
    async with conveyor(["scheduler"], env_for(settings), log) as child:
        code = await asyncio.wait_for(child.process.wait(), 30)
    output = log.read_text()
    assert code == 1, output
    line = next(line for line in output.splitlines() if "cannot start" in line)
    assert "hunter2" not in output
    assert "conveyor:" not in line, line
    assert f"MongoDB at mongodb://127.0.0.1:{port}/ did not answer" in line, line
    reason = line.split("did not answer:", 1)[1]
    assert reason.strip(' "}') != "", line

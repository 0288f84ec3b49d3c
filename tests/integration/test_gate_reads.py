"""GETs of the GATE Cloud-style API never write: a run that ended is settled by housekeeping
(or the next change to its job), not by whoever reads the job first. The gateway here runs
without its housekeeping loops, so that nothing but the reads touches the store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from services.gateway.app import create_app
from services.gateway.gatecloud.housekeeping import HOUSEKEEPING, settle_ended_runs
from services.gateway.gatecloud.records import STARTED, new_gate_job
from shared.jobs import Status, new_task, task_key
from shared.objects import open_objects
from shared.settings import Settings
from shared.store import Document, open_store
from tests.gateapi import GateApi, api_path
from tests.platform import Client, make_account


def ended_run(job_id: str, organization_id: str) -> tuple[Document, Document]:
    """A started GATE job whose only run completed a minute ago (its task never started, so
    its worker has nothing left to write), not yet settled; and that run's core job."""
    gate = {**new_gate_job(job_id, "read me", organization_id, "acme", "u1",
                           {"setup": 0.0, "hour": 1.0, "mib": 0.0}),
            "phase": STARTED, "starts": 1, "unsettled": 1}
    finished = datetime.now(UTC) - timedelta(minutes=1)
    core = {"_id": job_id, "status": int(Status.COMPLETED), "runs": 1, "finished": finished,
            "organization_id": organization_id,
            "tasks": {task_key(1): {**new_task(1, "gate:annotate", {}),
                                    "status": int(Status.COMPLETED)}}}
    return gate, core


async def test_reading_an_ended_run_writes_nothing_until_housekeeping_settles_it(
    settings: Settings, aiohttp_client: Any
) -> None:
    app = create_app(settings)
    for loop in HOUSEKEEPING:
        app.cleanup_ctx.remove(loop)
    client: Client = await aiohttp_client(app)
    account = await make_account(settings)
    api = GateApi(client, account, xml=False)
    gate, core = ended_run("readonly001", account.organization_id)
    async with open_store(settings, "test") as store, open_objects(settings) as objects:
        await store.gate_jobs.insert_one(gate)
        await store.jobs.insert_one(core)
        before = await store.gate_jobs.find_one({"_id": gate["_id"]})

        details = await api.ok("GET", f"/api/job/{gate['_id']}")
        listed = await api.ok("GET", "/api/job?state=ACTIVE")
        summary = await api.ok("GET", f"/api/job/{gate['_id']}/reports/summary")

        assert details["state"] == "ACTIVE"
        assert "resultBundle" not in details
        assert [job["id"] for job in listed] == [gate["_id"]]
        assert summary["state"] == "ACTIVE"
        assert await store.gate_jobs.find_one({"_id": gate["_id"]}) == before, "a GET wrote"
        assert await store.data_bundles.count_documents({"job_id": gate["_id"]}) == 0

        assert await settle_ended_runs(store, objects) == [gate["_id"]]
        details = await api.ok("GET", f"/api/job/{gate['_id']}")
        assert details["state"] == "COMPLETED"
        bundle = await api.ok("GET", api_path(details["resultBundle"]))
        assert bundle["id"] == f"{gate['_id']}.1"

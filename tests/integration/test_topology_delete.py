"""`conveyor admin topology delete --prefix P` on the shared broker: it removes an instance's
leftovers, those the topology can name and those only the broker's listing finds, prints
each, and refuses a prefix that would remove more than one instance's."""

from __future__ import annotations

import asyncio
import os

import pytest

from shared.broker import open_amqp
from shared.settings import Settings
from shared.teardown import broker_listing
from shared.topology import Topology
from tests.processes import CONVEYOR


async def admin(settings: Settings, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env["CONVEYOR_AMQP_URL"] = settings.amqp_url
    process = await asyncio.create_subprocess_exec(
        *CONVEYOR, "admin", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def names_with(settings: Settings, prefix: str) -> list[str]:
    listing = await broker_listing("/")
    if isinstance(listing, str):  # e.g. a broker in a container: only its listing tells
        pytest.skip(f"needs the broker's own listing of names: {listing}")
    return sorted(name for names in listing for name in names if name.startswith(prefix))


async def test_delete_removes_every_queue_and_exchange_of_the_prefix(
    settings: Settings,
) -> None:
    prefix = settings.amqp_prefix
    # An instance's leftovers: its topology with a region this admin's settings do not
    # name, a retry's delay queue, and a queue no topology knows (found by listing only).
    async with open_amqp(settings, "test") as connection:
        channel = await connection.channel()
        topology = Topology(prefix, ("local", "aws:eu-west-9"))
        await topology.declare(channel)
        await topology.declare_delay_queue(channel, "scheduler.events", 1200)
        await channel.declare_queue(f"{prefix}something.else", durable=True)
        await channel.close()
    before = await names_with(settings, prefix)
    assert len(before) == 18, before  # 5 work, 5 dead, 1 delay, 1 other queue; 6 exchanges
    # A neighbour whose names start like this prefix but for its last character stays.
    neighbour = Topology(f"{prefix[:-1]}-next.", ("local",))
    async with open_amqp(settings, "test") as connection:
        channel = await connection.channel()
        await neighbour.declare(channel)
        await channel.close()
    try:
        code, out, err = await admin(settings, "topology", "delete", "--prefix", prefix)
        assert code == 0, err
        removed = out.splitlines()
        assert removed[-1] == "12 queue(s) and 6 exchange(s) removed"
        assert sorted(line.split()[-1] for line in removed[:-1]) == before
        assert f"removed queue {prefix}tasks.aws:eu-west-9" in removed
        assert f"removed queue {prefix}delay.scheduler.events.1200" in removed
        assert f"removed queue {prefix}something.else" in removed
        assert f"removed exchange {prefix}conveyor.jobs" in removed
        left = await names_with(settings, prefix[:-1])
        assert left == sorted(neighbour.exchange_names + [
            neighbour.name(q) for queue in neighbour.consumed_queues
            for q in (queue, f"dead.{queue}")]), left
    finally:
        async with open_amqp(settings, "test") as connection:
            channel = await connection.channel()
            await neighbour.delete(channel)
            await channel.close()


@pytest.mark.parametrize(("prefix", "reason"), [
    ("", "--prefix must not be empty"),
    ("conveyor", "would also match 'conveyor.jobs' of an instance without a prefix"),
    ("tasks.local", "would also match 'tasks.' of an instance without a prefix"),
    ("amq.", "names starting with 'amq.' belong to the broker"),
    ("dev 1.", "must not contain white space"),
])
async def test_delete_refuses_a_prefix_that_would_remove_too_much(
    settings: Settings, prefix: str, reason: str,
) -> None:
    code, out, err = await admin(settings, "topology", "delete", "--prefix", prefix)
    assert code == 1
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert reason in err


async def test_delete_says_in_one_line_when_the_broker_does_not_answer(
    settings: Settings,
) -> None:
    down = settings.model_copy(update={"amqp_url": "amqp://guest:guest@127.0.0.1:9/"})
    code, out, err = await admin(down, "topology", "delete", "--prefix", "dev-0000.")
    assert code == 1
    assert len(err.splitlines()) == 1, err
    assert err.startswith(
        "conveyor admin: RabbitMQ at amqp://guest:***@127.0.0.1:9/ did not answer"), err

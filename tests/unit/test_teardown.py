"""The names a prefix-wide delete looks for, and the prefixes it refuses."""

from __future__ import annotations

import pytest

from shared.errors import ConfigError
from shared.teardown import check_prefix, vhost_of
from shared.topology import Topology, delay_steps, quantize_delay_ms


def test_delay_steps_hold_every_delay_a_retry_can_use() -> None:
    steps = set(delay_steps(300))
    every_ms = {quantize_delay_ms(ms / 1000) for ms in range(0, 300_001, 7)}
    assert every_ms <= steps
    assert max(steps) == 300_000
    assert len(steps) == len(delay_steps(300))  # no name twice


def test_known_queues_name_work_dead_and_delay_queues_of_each_region() -> None:
    names = Topology("dev-1.", ("local", "eu")).known_queues(2)
    assert "dev-1.tasks.eu" in names
    assert "dev-1.dead.tasks.eu" in names
    assert "dev-1.delay.scheduler.events.2000" in names
    assert "dev-1.delay.tasks.local.100" in names
    assert all(name.startswith("dev-1.") for name in names)


@pytest.mark.parametrize("prefix", ["dev-1a2b3c4d.", "test-0123.", "x", "conveyor-2."])
def test_an_instance_prefix_is_accepted(prefix: str) -> None:
    assert check_prefix(prefix) == prefix


@pytest.mark.parametrize(("prefix", "reason"), [
    ("", "must not be empty"),
    ("c", "would also match 'conveyor.jobs'"),
    ("conveyor.", "would also match 'conveyor.jobs'"),
    ("scheduler", "would also match 'scheduler.jobs'"),
    ("dead.tasks", "would also match 'dead.'"),
    ("delay.", "would also match 'delay.'"),
    ("amq.gen", "belong to the broker"),
    ("a b", "white space"),
])
def test_a_prefix_that_would_remove_too_much_is_refused(prefix: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        check_prefix(prefix, "--prefix")


def test_the_vhost_comes_from_the_url() -> None:
    assert vhost_of("amqp://guest:guest@127.0.0.1:5672/") == "/"
    assert vhost_of("amqp://guest:guest@127.0.0.1:5672") == "/"
    assert vhost_of("amqp://u:p@host/team%2Fa") == "team/a"

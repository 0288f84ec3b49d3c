"""Removing an instance's queues and exchanges by their name prefix, for `conveyor admin
topology delete --prefix P` and for `conveyor dev --ephemeral` when it stops.

AMQP cannot list what a broker holds, and the management plugin may be absent, so the
candidates come from two places: every name the topology derives for the prefix (work,
dead-letter and delay queues up to the longest retry delay, the exchanges), and the broker's
own `rabbitmqctl list_queues` / `list_exchanges` when the broker runs on this machine and lets
us ask (which also finds names the topology does not know, e.g. a region no longer
configured). Each candidate is checked with a passive declare before it is deleted, so the
report names exactly what was there, whichever node rabbitmqctl reached.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from aio_pika.abc import AbstractChannel, AbstractConnection
from aio_pika.exceptions import ChannelClosed

from shared.errors import ConfigError
from shared.topology import (
    EXCHANGES,
    LOGGER_ENTRIES,
    SCHEDULER_EVENTS,
    SCHEDULER_JOBS,
    Topology,
    dead_queue,
    tasks_queue,
)

# Names, or starts of names, of an instance without a prefix: a prefix that matches one of
# them would remove that instance's queues too.
UNPREFIXED = (*EXCHANGES, SCHEDULER_JOBS, SCHEDULER_EVENTS, LOGGER_ENTRIES, tasks_queue(""),
              dead_queue(""), "delay.")
PROBE_CHANNELS = 8
RABBITMQCTL_TIMEOUT = 30.0


@dataclass(frozen=True)
class Removed:
    queues: list[str]
    exchanges: list[str]
    # Why the broker's own listing was not used (None when it was).
    unlisted_because: str | None

    def lines(self) -> list[str]:
        lines = [f"removed queue {name}" for name in self.queues]
        lines += [f"removed exchange {name}" for name in self.exchanges]
        if self.unlisted_because:
            lines.append(f"(known names only: {self.unlisted_because})")
        lines.append(f"{len(self.queues)} queue(s) and {len(self.exchanges)} exchange(s) removed")
        return lines


def check_prefix(prefix: str, field: str = "--prefix") -> str:
    """The prefix, or a ConfigError naming `field` and why it would remove too much."""
    if not prefix:
        raise ConfigError(f"{field} must not be empty: it would match every queue and exchange")
    if any(char.isspace() for char in prefix):
        raise ConfigError(f"{field} {prefix!r} must not contain white space")
    if prefix.startswith("amq."):
        raise ConfigError(f"{field} {prefix!r}: names starting with 'amq.' belong to the broker")
    clash = next((name for name in UNPREFIXED
                  if name.startswith(prefix) or prefix.startswith(name)), None)
    if clash is not None:
        raise ConfigError(
            f"{field} {prefix!r} would also match {clash!r} of an instance without a prefix; "
            "give the instance's whole prefix (e.g. 'dev-1a2b3c4d.')")
    return prefix


def vhost_of(amqp_url: str) -> str:
    path = urlsplit(amqp_url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


async def broker_listing(vhost: str) -> tuple[list[str], list[str]] | str:
    """(queues, exchanges) as `rabbitmqctl` lists them, or why it could not."""
    script = shutil.which("rabbitmqctl") or next(
        (path for path in ("/usr/sbin/rabbitmqctl", "/usr/lib/rabbitmq/bin/rabbitmqctl")
         if shutil.which(path)), None)
    if script is None:
        return "rabbitmqctl is not installed here"
    listed: list[list[str]] = []
    for what in ("list_queues", "list_exchanges"):
        process = await asyncio.create_subprocess_exec(
            script, what, "-q", "--no-table-headers", "-p", vhost, "name",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        try:
            output, _ = await asyncio.wait_for(process.communicate(), RABBITMQCTL_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
            return f"rabbitmqctl {what} did not answer within {RABBITMQCTL_TIMEOUT:g}s"
        text = output.decode(errors="replace")
        if process.returncode != 0:
            first = next((line for line in text.splitlines() if line.strip()), "no output")
            return f"rabbitmqctl {what} failed: {first.strip()}"
        listed.append([line.strip() for line in text.splitlines() if line.strip()])
    return listed[0], listed[1]


async def existing(
    connection: AbstractConnection, names: Iterable[str], *, exchange: bool
) -> list[str]:
    """The `names` that exist, by passive declares on a few channels at once (the broker
    closes the channel of a failed one; another is opened)."""
    pending = list(dict.fromkeys(names))
    found: set[str] = set()

    async def probe_some() -> None:
        channel: AbstractChannel = await connection.channel(publisher_confirms=False)
        try:
            while pending:
                name = pending.pop()
                try:
                    if exchange:
                        await channel.get_exchange(name, ensure=True)
                    else:
                        await channel.declare_queue(name, passive=True)
                except ChannelClosed:
                    # Closed by us too, or a robust connection would open it again.
                    await channel.close()
                    channel = await connection.channel(publisher_confirms=False)
                    continue
                found.add(name)
        finally:
            await channel.close()

    await asyncio.gather(*(probe_some() for _ in range(PROBE_CHANNELS)))
    return sorted(found)


async def delete_by_prefix(
    connection: AbstractConnection, prefix: str, *, regions: Iterable[str],
    max_delay_seconds: float, vhost: str = "/",
) -> Removed:
    """Remove every queue and exchange whose name starts with `prefix`."""
    check_prefix(prefix)
    topology = Topology(prefix, tuple(regions))
    queues = topology.known_queues(max_delay_seconds)
    exchanges = topology.exchange_names
    listing = await broker_listing(vhost)
    if not isinstance(listing, str):
        queues += [name for name in listing[0] if name.startswith(prefix)]
        exchanges += [name for name in listing[1] if name.startswith(prefix)]
    found_queues = await existing(connection, queues, exchange=False)
    found_exchanges = await existing(connection, exchanges, exchange=True)
    channel = await connection.channel(publisher_confirms=False)
    try:
        for name in found_queues:
            await channel.queue_delete(name)
        for name in found_exchanges:
            await channel.exchange_delete(name)
    finally:
        await channel.close()
    return Removed(found_queues, found_exchanges,
                   listing if isinstance(listing, str) else None)

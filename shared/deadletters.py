"""Reading and replaying dead letters: what operators do with `conveyor admin dead`.

Reading takes each message of the `dead.*` queues on a channel of its own without acking it;
closing that channel hands every message back, so listing changes nothing. Replaying
republishes a message to the queue it died in (as a first attempt again), then acks it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from shared.broker import Publisher, build_message
from shared.topology import (
    ATTEMPT_HEADER,
    DEAD_AT_HEADER,
    REASON_HEADER,
    SOURCE_QUEUE_HEADER,
    Topology,
    dead_queue,
)

DROPPED_HEADERS = {REASON_HEADER, DEAD_AT_HEADER, SOURCE_QUEUE_HEADER, ATTEMPT_HEADER,
                   "x-death", "x-first-death-exchange", "x-first-death-queue",
                   "x-first-death-reason", "x-delivery-count"}


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    queue: str
    reason: str
    dead_at: str
    incoming: AbstractIncomingMessage

    def line(self) -> str:
        return f"{self.message_id}  {self.queue}  {self.dead_at}  {self.reason}"


def describe(incoming: AbstractIncomingMessage, queue: str) -> DeadLetter:
    headers: dict[str, Any] = dict(incoming.headers or {})
    reason = headers.get(REASON_HEADER)
    if reason is None:  # dead-lettered by the broker itself (e.g. its delivery limit)
        deaths = headers.get("x-death") or [{}]
        first = deaths[0] if isinstance(deaths, list | tuple) and deaths else {}
        reason = f"broker: {first.get('reason', 'unknown') if isinstance(first, dict) else '?'}"
    dead_at = headers.get(DEAD_AT_HEADER) or (
        incoming.timestamp.isoformat() if incoming.timestamp else "-")
    return DeadLetter(incoming.message_id or f"tag-{incoming.delivery_tag}", queue, str(reason),
                      str(dead_at), incoming)


async def read_all(
    connection: AbstractRobustConnection, topology: Topology
) -> tuple[list[DeadLetter], Any]:
    """Every dead letter, unacked on a channel the caller closes (which hands back the rest)."""
    channel = await connection.channel()
    letters = []
    for queue in topology.consumed_queues:
        dead = await channel.get_queue(topology.name(dead_queue(queue)), ensure=False)
        while (incoming := await dead.get(no_ack=False, fail=False)) is not None:
            letters.append(describe(incoming, queue))
    return letters, channel


async def replay(publisher: Publisher, letter: DeadLetter) -> None:
    headers = {k: v for k, v in (letter.incoming.headers or {}).items()
               if k not in DROPPED_HEADERS}
    await publisher.publish_raw("", publisher.topology.name(letter.queue), build_message(
        letter.incoming.body, message_id=letter.incoming.message_id,
        message_type=letter.incoming.type, headers=headers,
    ))
    await letter.incoming.ack()

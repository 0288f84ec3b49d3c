"""What a consumer hands its handler: the plain data of `shared.consumer`."""

from __future__ import annotations

from dataclasses import dataclass

from aio_pika.abc import AbstractIncomingMessage

from shared.messages import Message


@dataclass
class Delivery:
    """A decoded message. A handler that settles it some other way first (a worker that
    reported its task handed back) acks it with `ack_now()`; the consumer then leaves
    settling to the handler."""

    message: Message
    attempt: int
    redelivered: bool
    incoming: AbstractIncomingMessage | None = None
    acked: bool = False

    async def ack_now(self) -> None:
        if not self.acked and self.incoming is not None:
            await self.incoming.ack()
        self.acked = True

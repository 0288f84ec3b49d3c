"""What a consumer hands its handler, and how long it retries: the plain data of
`shared.consumer`."""

from __future__ import annotations

import random
from dataclasses import dataclass

from aio_pika.abc import AbstractIncomingMessage

from shared.messages import Message


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 300.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt `attempt` (1-based): doubling from
        `base_delay`, capped, with jitter in [50 %, 100 %] so that retries spread out."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        jitter: float = (rng or random).random()
        return ceiling * (0.5 + 0.5 * jitter)


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

"""In-memory stand-ins for our own interfaces (`Store`, `Publisher`, the aio-pika channel and
deliveries the consumer sees), so that unit tests of the scheduler's machine, the consumer's
outcomes and the gateway's views run without servers. Integration tests never use them."""

from tests.fakes.broker import (
    CONNECTION_LOST,
    FakeChannel,
    FakeIncoming,
    FakePublisher,
    FakeQueue,
    Sent,
    unroutable,
)
from tests.fakes.store import FakeCollection, FakeStore, fake_store

__all__ = [
    "CONNECTION_LOST", "FakeChannel", "FakeCollection", "FakeIncoming", "FakePublisher",
    "FakeQueue", "FakeStore", "Sent", "fake_store", "unroutable",
]

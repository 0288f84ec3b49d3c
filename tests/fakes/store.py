"""`Store` over mongomock: the real `Store` class (its collection properties and `ping`)
with each collection an async adapter around a mongomock collection.

mongomock evaluates the filters and update operators our code sends (`$in`, `$all`, dotted
paths, `$set`, `$inc`, `$push`, `$currentDate`, `ReturnDocument.AFTER`), so no query engine
of our own. It is not nx-27017: that stand-in's quirks (docs/architecture.md, "Stand-ins")
are not reproduced here, which is what the integration tests are for."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, cast

import mongomock
from pymongo.errors import AutoReconnect

from shared.store import Document, Store


class Reachability:
    """Whether the fake store answers; while `down`, every call raises what PyMongo raises
    for an unreachable server (a `ConnectionFailure`)."""

    def __init__(self) -> None:
        self.down = False
        self.calls = 0  # operations tried, answered or not

    def check(self) -> None:
        self.calls += 1
        if self.down:
            raise AutoReconnect("fake store is down")


UPDATES = frozenset({"update_one", "update_many", "find_one_and_update"})


def server_time(update: Document) -> Document:
    """`$currentDate` as a `$set` of the time in milliseconds, as MongoDB stores a date:
    mongomock keeps microseconds there, and a filter on the date read back (the sweeper's
    compare-and-set on `waiting_since`) would then match nothing."""
    stamped = update.get("$currentDate")
    if not stamped:
        return update
    now = datetime.now(UTC)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    rest = {op: value for op, value in update.items() if op != "$currentDate"}
    return {**rest, "$set": {**rest.get("$set", {}), **dict.fromkeys(stamped, now)}}


class FakeCursor:
    """PyMongo's async cursor surface that our code uses: chained `sort`/`skip`/`limit`,
    then `to_list()` or `async for`."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def sort(self, *args: Any, **kwargs: Any) -> FakeCursor:
        self._cursor.sort(*args, **kwargs)
        return self

    def skip(self, count: int) -> FakeCursor:
        self._cursor.skip(count)
        return self

    def limit(self, count: int) -> FakeCursor:
        self._cursor.limit(count)
        return self

    async def to_list(self, length: int | None = None) -> list[Document]:
        found = list(self._cursor)
        return found if length is None else found[:length]

    async def __aiter__(self) -> AsyncIterator[Document]:
        for document in self._cursor:
            yield document


Hook = Callable[[], Awaitable[None]]


class FakeCollection:
    """Every method of mongomock's collection, awaitable; `find` and `aggregate` give a
    cursor. Each call first asks whether the store is reachable."""

    def __init__(self, collection: Any, reach: Reachability) -> None:
        self._collection = collection
        self._reach = reach
        self._before: dict[str, Hook] = {}
        self.name: str = collection.name

    def before_next(self, method: str, hook: Hook) -> None:
        """Run `hook` once, just before the next call of `method`: another writer getting
        in between a read and a compare-and-set."""
        self._before[method] = hook

    def find(self, *args: Any, **kwargs: Any) -> FakeCursor:
        self._reach.check()
        return FakeCursor(self._collection.find(*args, **kwargs))

    def aggregate(self, *args: Any, **kwargs: Any) -> FakeCursor:
        self._reach.check()
        return FakeCursor(self._collection.aggregate(*args, **kwargs))

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self._collection, name)

        @functools.wraps(method)
        async def call(*args: Any, **kwargs: Any) -> Any:
            hook = self._before.pop(name, None)
            if hook is not None:
                await hook()
            self._reach.check()
            if name in UPDATES:
                if len(args) > 1:
                    args = (args[0], server_time(args[1]), *args[2:])
                elif "update" in kwargs:
                    kwargs["update"] = server_time(kwargs["update"])
            return method(*args, **kwargs)

        return call


class FakeDatabase:
    def __init__(self, database: Any, reach: Reachability) -> None:
        self._database = database
        self._reach = reach
        self._collections: dict[str, FakeCollection] = {}

    def __getitem__(self, name: str) -> FakeCollection:
        if name not in self._collections:
            self._collections[name] = FakeCollection(self._database[name], self._reach)
        return self._collections[name]

    async def command(self, *args: Any, **kwargs: Any) -> Document:
        self._reach.check()
        return {"ok": 1.0}


class FakeClient:
    def __init__(self, reach: Reachability) -> None:
        self.admin = FakeDatabase(mongomock.MongoClient().admin, reach)

    async def close(self) -> None:
        return None


class FakeStore(Store):
    """A `Store` whose data lives in memory; `down = True` makes it unreachable."""

    reach: Reachability

    @property
    def down(self) -> bool:
        return self.reach.down

    @down.setter
    def down(self, value: bool) -> None:
        self.reach.down = value


def fake_store() -> FakeStore:
    reach = Reachability()
    # tz_aware as in `open_store`: dates come back aware, as the services expect.
    database: Any = mongomock.MongoClient(tz_aware=True)["conveyor"]
    store = FakeStore(cast(Any, FakeClient(reach)), cast(Any, FakeDatabase(database, reach)))
    store.reach = reach
    return store

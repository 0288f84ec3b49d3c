"""The gateway's real application (routes and middlewares of `create_app`) on the fake store
and publisher: its cleanup contexts, which open the real servers, are dropped and the
AppKeys set to the fakes instead."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web

from services.gateway.app import create_app
from services.gateway.keys import BROKER, OBJECTS, SETTINGS, STORE
from shared.accounts import hash_key
from shared.objects import ObjectStore
from shared.retry import RetryPolicy
from shared.runtime import Broker
from shared.settings import Settings
from tests.fakes.broker import FakePublisher
from tests.fakes.store import FakeStore, fake_store


class FakeObjects:
    """Presigns without S3: the URL only names the object."""

    async def presigned_url(self, key: str) -> str:
        return f"https://objects.invalid/{key}"


@dataclass
class Account:
    user_id: str
    key: str
    organization_ids: tuple[str, ...]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"api-key {self.key}"}


@dataclass
class FakeGateway:
    app: web.Application
    store: FakeStore
    publisher: FakePublisher

    async def organization(self, org_id: str, name: str) -> None:
        await self.store.organizations.insert_one({"_id": org_id, "name": name})

    async def account(self, user_id: str, *org_ids: str) -> Account:
        """A user in `org_ids` (created first with `organization`) and an API key of it."""
        key = f"key-of-{user_id}"
        await self.store.users.insert_one({
            "_id": user_id, "name": user_id,
            "memberships": [{"organization_id": o, "roles": ["member"]} for o in org_ids]})
        await self.store.api_keys.insert_one(
            {"_id": f"k-{user_id}", "key_hash": hash_key(key), "user_id": user_id})
        return Account(user_id, key, org_ids)


def fake_gateway(settings: Settings | None = None) -> FakeGateway:
    settings = settings or Settings()
    store, publisher = fake_store(), FakePublisher()
    app = create_app(settings)
    app.cleanup_ctx.clear()
    app[STORE] = store
    app[BROKER] = Broker(
        connection=cast(Any, None), publisher=publisher,
        channel=cast(Any, publisher.fake_channel), topology=publisher.topology,
        policy=RetryPolicy())
    app[OBJECTS] = cast(ObjectStore, FakeObjects())
    assert app[SETTINGS] is settings
    return FakeGateway(app, store, publisher)

"""The MongoDB lifecycle against a real wire-protocol server."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo.errors import DuplicateKeyError

from shared.accounts import ensure_account, hash_key, new_api_key
from shared.settings import Settings
from shared.store import DAY, open_store


def index_on(indexes: Mapping[str, Any], *fields: str) -> dict[str, Any]:
    """The index over exactly `fields` (by key, since stand-in servers rename indexes)."""
    for info in indexes.values():
        if [name for name, _ in info["key"]] == list(fields):
            return dict(info)
    raise AssertionError(f"no index on {fields}: {indexes}")


async def test_indexes_are_created_at_start_and_twice_is_harmless(settings: Settings) -> None:
    async with open_store(settings, "test") as store:
        await store.ensure_indexes(settings.log_retention_days)
        indexes = await store.logs.index_information()
    assert index_on(indexes, "job_id", "task_id", "position")["unique"] is True
    ttl = index_on(indexes, "timestamp")["expireAfterSeconds"]
    assert ttl == settings.log_retention_days * DAY


async def test_changed_retention_updates_the_ttl_index(settings: Settings) -> None:
    async with open_store(settings, "test"):
        pass
    changed = settings.model_copy(update={"log_retention_days": 3})
    async with open_store(changed, "test") as store:
        indexes = await store.logs.index_information()
    assert index_on(indexes, "timestamp")["expireAfterSeconds"] == 3 * DAY


async def test_duplicate_log_entry_is_refused(settings: Settings) -> None:
    entry = {"job_id": "j", "task_id": 0, "attempt": 1, "seq": 0, "position": 2**32,
             "timestamp": datetime.now(UTC), "message": "m"}
    async with open_store(settings, "test") as store:
        await store.logs.insert_one(dict(entry))
        with pytest.raises(DuplicateKeyError):
            await store.logs.insert_one(dict(entry))


async def test_account_bootstrap_is_idempotent(settings: Settings) -> None:
    key = new_api_key()
    async with open_store(settings, "test") as store:
        first = await ensure_account(store, "demo", "demo", key, roles=["CONFIG"])
        second = await ensure_account(store, "demo", "demo", key, roles=["CONFIG"])
        assert first["organization"]["_id"] == second["organization"]["_id"]
        assert await store.api_keys.count_documents({}) == 1
        stored = await store.api_keys.find_one({})
    assert stored is not None
    assert stored["key_hash"] == hash_key(key)
    assert key not in str(stored)
    assert stored["prefix"] == key.split(".")[0]

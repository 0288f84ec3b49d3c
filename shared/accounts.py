"""Organizations, users and API keys as stored; keys are kept only as a SHA-256 digest
(they are long random secrets, so a fast digest is safe) and shown once at creation."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from shared.store import Document, Store

PREFIX_LENGTH = 9


def new_api_key() -> str:
    """`PREFIX.SECRET`, like the seed's keys; the prefix names the key in listings."""
    prefix = secrets.token_urlsafe(12)[:PREFIX_LENGTH].replace("-", "x").replace("_", "y")
    return f"{prefix}.{secrets.token_urlsafe(24)}"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_id() -> str:
    return secrets.token_hex(8)


async def _insert_or_get(
    store_collection: AsyncCollection[Document], name: str, document: Document
) -> Document:
    existing = await store_collection.find_one({"name": name})
    if existing is not None:
        return dict(existing)
    try:
        await store_collection.insert_one(document)
    except DuplicateKeyError:  # a concurrent bootstrap won the race
        found = await store_collection.find_one({"name": name})
        return dict(found or document)
    return document


async def ensure_account(
    store: Store, organization: str, user: str, api_key: str, roles: list[str]
) -> Document:
    """Make sure the organization, its user (with `roles`) and the API key exist; idempotent,
    so `conveyor dev` can run it at every start."""
    now = datetime.now(UTC)
    org = await _insert_or_get(
        store.organizations, organization, {"_id": new_id(), "name": organization, "created": now}
    )
    member = {"organization_id": org["_id"], "roles": roles}
    person = await _insert_or_get(
        store.users, user, {"_id": new_id(), "name": user, "memberships": [member],
                            "created": now},
    )
    digest = hash_key(api_key)
    if await store.api_keys.find_one({"key_hash": digest}) is None:
        try:
            await store.api_keys.insert_one({
                "_id": new_id(), "key_hash": digest, "prefix": api_key.split(".", 1)[0],
                "user_id": person["_id"], "created": now, "revoked": None, "last_used": None,
            })
        except DuplicateKeyError:
            pass
    return {"organization": org, "user": person}

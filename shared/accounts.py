"""Organizations, users (members of one or more organizations, with roles in each) and API
keys. Keys are kept only as a SHA-256 digest (they are long random secrets, so a fast digest
is safe) and shown once, at creation."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from shared.errors import ConveyorError
from shared.store import Document, Store

PREFIX_LENGTH = 9
ROLES = frozenset({"CONFIG"})
_NAME = re.compile(r"^[\w][\w .@+-]{0,99}$")


class AccountError(ConveyorError):
    """Bad input to an account operation: the message says which and why."""


@dataclass(frozen=True)
class MembershipSpec:
    organization: str
    roles: tuple[str, ...]


def parse_membership(text: str) -> MembershipSpec:
    """`ORG` or `ORG:ROLE,ROLE`."""
    organization, _, roles_text = text.partition(":")
    roles = tuple(role.strip().upper() for role in roles_text.split(",") if role.strip())
    if not organization.strip():
        raise AccountError(f"--org {text!r} names no organization (ORG[:ROLE,ROLE])")
    unknown = sorted(set(roles) - ROLES)
    if unknown:
        raise AccountError(
            f"unknown role {', '.join(unknown)} in --org {text!r}; known roles: "
            + ", ".join(sorted(ROLES))
        )
    return MembershipSpec(organization.strip(), roles)


def check_name(kind: str, name: str) -> str:
    if not _NAME.match(name):
        raise AccountError(
            f"{kind} name {name!r} must be 1-100 letters, digits, spaces or '.@+-_' "
            "and start with a letter or digit"
        )
    return name


def new_api_key() -> str:
    """`PREFIX.SECRET`, like the seed's keys; the prefix names the key in listings."""
    prefix = secrets.token_urlsafe(12)[:PREFIX_LENGTH].replace("-", "x").replace("_", "y")
    return f"{prefix}.{secrets.token_urlsafe(24)}"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_id() -> str:
    return secrets.token_hex(8)


async def create_organization(store: Store, name: str) -> Document:
    document = {"_id": new_id(), "name": check_name("organization", name),
                "created": datetime.now(UTC)}
    try:
        await store.organizations.insert_one(document)
    except DuplicateKeyError:
        raise AccountError(f"an organization named {name!r} exists already") from None
    return document


async def create_user(store: Store, name: str, memberships: list[MembershipSpec]) -> Document:
    if not memberships:
        raise AccountError("a user needs at least one --org")
    resolved = []
    for membership in memberships:
        org = await store.organizations.find_one({"name": membership.organization})
        if org is None:
            raise AccountError(f"no organization named {membership.organization!r}")
        resolved.append({"organization_id": org["_id"], "roles": list(membership.roles)})
    document = {"_id": new_id(), "name": check_name("user", name), "memberships": resolved,
                "created": datetime.now(UTC)}
    try:
        await store.users.insert_one(document)
    except DuplicateKeyError:
        raise AccountError(f"a user named {name!r} exists already") from None
    return document


async def create_key(store: Store, user_name: str) -> str:
    """A new key for the user; the key itself is returned once and never stored."""
    user = await store.users.find_one({"name": user_name})
    if user is None:
        raise AccountError(f"no user named {user_name!r}")
    key = new_api_key()
    await store.api_keys.insert_one({
        "_id": new_id(), "key_hash": hash_key(key), "prefix": key.split(".", 1)[0],
        "user_id": user["_id"], "created": datetime.now(UTC), "revoked": None,
        "last_used": None,
    })
    return key


async def revoke_key(store: Store, prefix: str) -> Document:
    matches = await store.api_keys.find({"prefix": prefix}).to_list()
    if not matches:
        raise AccountError(f"no API key with prefix {prefix!r}")
    if len(matches) > 1:
        raise AccountError(f"{len(matches)} keys share prefix {prefix!r}; none revoked")
    key = matches[0]
    if key.get("revoked") is None:
        await store.api_keys.update_one(
            {"_id": key["_id"], "revoked": None}, {"$currentDate": {"revoked": True}}
        )
    return dict(await store.api_keys.find_one({"_id": key["_id"]}) or key)


async def _insert_or_get(
    collection: AsyncCollection[Document], name: str, document: Document
) -> Document:
    existing = await collection.find_one({"name": name})
    if existing is not None:
        return dict(existing)
    try:
        await collection.insert_one(document)
    except DuplicateKeyError:  # a concurrent bootstrap won the race
        found = await collection.find_one({"name": name})
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

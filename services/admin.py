"""`conveyor admin`: organizations, users and API keys, straight in the store; dead letters
and an instance's leftover queues on the broker. Each command prints its result as the last
line of stdout; bad input or a failure is one line on stderr and exit 1."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import TextIO

from aiormq.exceptions import AMQPError

from shared.accounts import (
    create_key,
    create_organization,
    create_user,
    parse_membership,
    revoke_key,
)
from shared.broker import Publisher, open_amqp
from shared.deadletters import read_all, replay
from shared.errors import ConveyorError, DependencyError
from shared.runtime import topology_for
from shared.settings import Settings
from shared.store import Document, Store, open_store
from shared.teardown import check_prefix, delete_by_prefix, vhost_of

LISTS = ("orgs", "users", "keys")


def add_admin_commands(admin: argparse.ArgumentParser) -> None:
    commands = admin.add_subparsers(dest="admin_command", required=True, metavar="COMMAND")
    org = commands.add_parser("create-org", help="create an organization; prints its id")
    org.add_argument("name")
    user = commands.add_parser("create-user", help="create a user; prints its id")
    user.add_argument("name")
    user.add_argument("--org", action="append", required=True, metavar="ORG[:ROLE,ROLE]",
                      help="an organization the user belongs to, with roles (repeatable)")
    key = commands.add_parser("create-key", help="create an API key; prints it, only this once")
    key.add_argument("user")
    revoke = commands.add_parser("revoke-key", help="revoke the API key with this prefix")
    revoke.add_argument("prefix")
    listing = commands.add_parser("list", help="list orgs, users or keys")
    listing.add_argument("what", choices=LISTS)
    dead = commands.add_parser("dead", help="dead letters: list them, or replay them")
    dead_commands = dead.add_subparsers(dest="dead_command", required=True, metavar="COMMAND")
    dead_list = dead_commands.add_parser("list", help="one line per dead letter")
    dead_replay = dead_commands.add_parser("replay", help="put dead letters back in their queue")
    which = dead_replay.add_mutually_exclusive_group(required=True)
    which.add_argument("message_id", nargs="?", metavar="ID", help="a message id (or its start)")
    which.add_argument("--all", action="store_true", help="replay every dead letter")
    topology = commands.add_parser("topology", help="an instance's exchanges and queues")
    topology_commands = topology.add_subparsers(
        dest="topology_command", required=True, metavar="COMMAND")
    delete = topology_commands.add_parser(
        "delete", help="remove every queue and exchange whose name starts with a prefix")
    delete.add_argument("--prefix", required=True, metavar="P",
                        help="the instance's CONVEYOR_AMQP_PREFIX, e.g. dev-1a2b3c4d.")
    for sub in (org, user, key, revoke, listing, dead_list, dead_replay, delete):
        # Also after the command (`conveyor admin list orgs --env-file F`).
        sub.add_argument("--env-file", type=Path, metavar="PATH", default=argparse.SUPPRESS)


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(moment, datetime) else "-"


async def list_lines(store: Store, what: str) -> list[str]:
    organizations = {org["_id"]: org["name"] async for org in store.organizations.find()}
    if what == "orgs":
        return [f"{org_id}  {name}" for org_id, name in sorted(
            organizations.items(), key=lambda item: item[1])]
    users = {user["_id"]: user async for user in store.users.find()}
    if what == "users":
        lines = []
        for user in sorted(users.values(), key=lambda u: u["name"]):
            memberships = ", ".join(
                organizations.get(m["organization_id"], m["organization_id"])
                + (f":{','.join(m['roles'])}" if m.get("roles") else "")
                for m in user.get("memberships", [])
            )
            lines.append(f"{user['_id']}  {user['name']}  {memberships}")
        return lines
    lines = []
    async for key in store.api_keys.find():
        owner = users.get(key["user_id"], {}).get("name", key["user_id"])
        state = f"revoked {_when(key['revoked'])}" if key.get("revoked") else "active"
        lines.append(f"{key['prefix']}  {owner}  created {_when(key.get('created'))}  "
                     f"last used {_when(key.get('last_used'))}  {state}")
    return sorted(lines)


async def dead_letters(settings: Settings, args: argparse.Namespace) -> list[str]:
    topology = topology_for(settings)
    async with open_amqp(settings, "conveyor-admin") as connection:
        letters, channel = await read_all(connection, topology)
        try:
            if args.dead_command == "list":
                return [letter.line() for letter in letters] + [f"{len(letters)} dead letter(s)"]
            chosen = letters if args.all else [
                letter for letter in letters if letter.message_id.startswith(args.message_id)]
            if not args.all and len(chosen) != 1:
                raise ConveyorError(
                    f"no dead letter with id {args.message_id!r}" if not chosen else
                    f"{len(chosen)} dead letters start with {args.message_id!r}; give more")
            publisher = await Publisher.open(connection, topology)
            try:
                for letter in chosen:
                    await replay(publisher, letter)
            finally:
                await publisher.close()
            return [f"replayed {letter.message_id} to {letter.queue}" for letter in chosen] + [
                f"{len(chosen)} replayed"]
        finally:
            await channel.close()


async def delete_topology(settings: Settings, prefix: str) -> list[str]:
    check_prefix(prefix)  # before connecting: a bad prefix is refused even with no broker
    async with open_amqp(settings, "conveyor-admin") as connection:
        try:
            removed = await delete_by_prefix(
                connection, prefix, regions=settings.regions,
                max_delay_seconds=settings.retry_max_delay, vhost=vhost_of(settings.amqp_url))
        except (AMQPError, ConnectionError) as exc:
            raise DependencyError(f"RabbitMQ failed while removing {prefix!r}*: "
                                  f"{exc or type(exc).__name__}") from exc
    return removed.lines()


async def execute(settings: Settings, args: argparse.Namespace) -> list[str]:
    if args.admin_command == "dead":
        return await dead_letters(settings, args)
    if args.admin_command == "topology":
        return await delete_topology(settings, args.prefix)
    async with open_store(settings, "conveyor-admin") as store:
        command = args.admin_command
        if command == "create-org":
            return [str((await create_organization(store, args.name))["_id"])]
        if command == "create-user":
            memberships = [parse_membership(text) for text in args.org]
            return [str((await create_user(store, args.name, memberships))["_id"])]
        if command == "create-key":
            return [await create_key(store, args.user)]
        if command == "revoke-key":
            revoked: Document = await revoke_key(store, args.prefix)
            return [f"revoked {revoked['prefix']} at {_when(revoked.get('revoked'))}"]
        return await list_lines(store, args.what)


def main(settings: Settings, args: argparse.Namespace,
         out: TextIO | None = None, err: TextIO | None = None) -> int:
    # The client library logs a failed connection itself; the one line below says it.
    logging.getLogger("aiormq").setLevel(logging.CRITICAL)
    try:
        lines = asyncio.run(execute(settings, args))
    except ConveyorError as exc:
        print(f"conveyor admin: {exc}", file=err or sys.stderr)
        return 1
    for line in lines:
        print(line, file=out or sys.stdout)
    return 0

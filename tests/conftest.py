"""Real servers for the tests, found in the order the README gives (Tests): an explicit URL from the
environment, then testcontainers when a Docker engine answers, then local servers (the
RabbitMQ already running, else a private node; nx-27017; moto_server). Every test gets its
own queue prefix, database and bucket, and whatever a fixture starts, it stops."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import urllib3
from pymongo import AsyncMongoClient

from services.dev.main import amqp_answers
from services.dev.servers import LocalServers
from shared.broker import open_amqp
from shared.objects import make_client
from shared.runtime import Broker, open_broker
from shared.settings import Settings
from shared.store import Document
from shared.topology import Topology

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
TEST_S3_KEY = "conveyor-test"


@dataclass(frozen=True)
class ServerUrls:
    amqp_url: str
    mongo_url: str
    s3_endpoint: str
    s3_access_key: str = TEST_S3_KEY
    s3_secret_key: str = TEST_S3_KEY

    def environment(self) -> dict[str, str]:
        return {
            "CONVEYOR_AMQP_URL": self.amqp_url,
            "CONVEYOR_MONGO_URL": self.mongo_url,
            "CONVEYOR_S3_ENDPOINT": self.s3_endpoint,
            "CONVEYOR_S3_ACCESS_KEY": self.s3_access_key,
            "CONVEYOR_S3_SECRET_KEY": self.s3_secret_key,
        }


def docker_engine_answers() -> bool:
    if "DOCKER_HOST" not in os.environ and not Path("/var/run/docker.sock").exists():
        return False
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except Exception:  # no client library, or no engine behind the socket
        return False
    return True


def _containers(stack: ExitStack) -> ServerUrls:
    from testcontainers.minio import MinioContainer
    from testcontainers.mongodb import MongoDbContainer
    from testcontainers.rabbitmq import RabbitMqContainer

    rabbit = stack.enter_context(RabbitMqContainer("rabbitmq:3.13-management"))
    mongo = stack.enter_context(MongoDbContainer("mongo:7"))
    minio = stack.enter_context(MinioContainer())
    config = minio.get_config()
    params = rabbit.get_connection_params()
    return ServerUrls(
        amqp_url=f"amqp://guest:guest@{params.host}:{params.port}/",
        mongo_url=mongo.get_connection_url(),
        s3_endpoint=f"http://{config['endpoint']}",
        s3_access_key=config["access_key"],
        s3_secret_key=config["secret_key"],
    )


@pytest.fixture(scope="session")
async def servers(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerUrls]:
    env = os.environ
    explicit = {k: env[k] for k in ("CONVEYOR_AMQP_URL", "CONVEYOR_MONGO_URL",
                                    "CONVEYOR_S3_ENDPOINT") if k in env}
    with ExitStack() as containers:
        if len(explicit) < 3 and docker_engine_answers():
            from_docker = _containers(containers)
            explicit = {**from_docker.environment(), **explicit}
        local = LocalServers()
        data_dir = tmp_path_factory.mktemp("servers")
        try:
            amqp = explicit.get("CONVEYOR_AMQP_URL", DEFAULT_AMQP_URL)
            if not await amqp_answers(amqp):
                amqp = await local.start_rabbitmq(data_dir)
            mongo = explicit.get("CONVEYOR_MONGO_URL") or await local.start_mongo(data_dir)
            s3 = explicit.get("CONVEYOR_S3_ENDPOINT") or await local.start_s3(data_dir)
            yield ServerUrls(
                amqp, mongo, s3,
                env.get("CONVEYOR_S3_ACCESS_KEY", explicit.get("CONVEYOR_S3_ACCESS_KEY",
                                                               TEST_S3_KEY)),
                env.get("CONVEYOR_S3_SECRET_KEY", explicit.get("CONVEYOR_S3_SECRET_KEY",
                                                               TEST_S3_KEY)),
            )
        finally:
            await local.stop()


def isolated_settings(servers: ServerUrls, **overrides: Any) -> Settings:
    """Settings of one test: its own queue prefix, database and bucket."""
    tag = uuid.uuid4().hex[:12]
    values: dict[str, Any] = {
        "amqp_url": servers.amqp_url,
        "amqp_prefix": f"test-{tag}.",
        "mongo_url": servers.mongo_url,
        "mongo_db": f"test_{tag}",
        "s3_endpoint": servers.s3_endpoint,
        "s3_access_key": servers.s3_access_key,
        "s3_secret_key": servers.s3_secret_key,
        "s3_bucket": f"test-{tag}",
        "grace_period": 5.0,
        # Services run side by side in one test: each picks a free port.
        "gateway_port": 0, "scheduler_port": 0, "logger_port": 0, "worker_port": 0,
        "retry_base_delay": 0.2,
        "retry_max_delay": 1.0,
        **overrides,
    }
    return Settings(_env_file=None, **values)


async def cleanup(settings: Settings) -> None:
    """Remove the test's queues, database and bucket."""
    async with open_amqp(settings, "test-cleanup") as connection:
        channel = await connection.channel()
        await Topology(settings.amqp_prefix, tuple(settings.regions)).delete(channel)
    client: AsyncMongoClient[Document] = AsyncMongoClient(settings.mongo_url)
    try:
        await client.drop_database(settings.mongo_db)
    finally:
        await client.close()
    def drop_bucket() -> None:
        http = urllib3.PoolManager()
        client = make_client(settings, http)
        try:
            if not client.bucket_exists(settings.s3_bucket):
                return
            for obj in client.list_objects(settings.s3_bucket, recursive=True):
                client.remove_object(settings.s3_bucket, obj.object_name)
            client.remove_bucket(settings.s3_bucket)
        finally:
            http.clear()

    await asyncio.to_thread(drop_bucket)


SettingsFactory = Callable[..., Settings]


@pytest.fixture
async def settings_factory(servers: ServerUrls) -> AsyncIterator[SettingsFactory]:
    """Make isolated settings (overrides as keyword arguments); each is cleaned up after."""
    made: list[Settings] = []

    def make(**overrides: Any) -> Settings:
        value = isolated_settings(servers, **overrides)
        made.append(value)
        return value

    yield make
    for value in made:
        await cleanup(value)


@pytest.fixture
def settings(settings_factory: SettingsFactory) -> Settings:
    return settings_factory()


@pytest.fixture
async def broker(settings: Settings) -> AsyncIterator[Broker]:
    async with open_broker(settings, "test", prefetch=10) as value:
        yield value


def process_env(servers: ServerUrls, settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a process started for a test: the servers, and the test's own
    queue prefix, database and bucket (`extra`: more CONVEYOR_* variables)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env.update(servers.environment())
    env.update({
        "CONVEYOR_AMQP_PREFIX": settings.amqp_prefix,
        "CONVEYOR_MONGO_DB": settings.mongo_db,
        "CONVEYOR_S3_BUCKET": settings.s3_bucket,
        "CONVEYOR_GRACE_PERIOD": "10",
        "CONVEYOR_LOG_FORMAT": "json",
        **extra,
    })
    return env


@pytest.fixture
def subprocess_env(servers: ServerUrls, settings: Settings) -> dict[str, str]:
    """The environment of a service started as a real process for this test."""
    return process_env(servers, settings)


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent

"""A user's own S3 endpoint is checked on every connection, not only once before the task
(real S3 server on loopback; the rebinding name's answers are simulated)."""

from __future__ import annotations

import socket
from typing import Any

import pytest
import urllib3

from services.worker.context import ToolError
from services.worker.tools.s3access import _check_endpoint, s3_failure
from shared.netguard import BlockedDestinationError, guarded_pool_manager
from shared.objects import make_client
from shared.settings import Settings

PUBLIC = "93.184.216.34"


def client(settings: Settings, allow_private: bool, endpoint: str | None = None) -> Any:
    manager = guarded_pool_manager(allow_private, retries=urllib3.Retry(total=0))
    if endpoint is not None:
        settings = settings.model_copy(update={"s3_endpoint": endpoint})
    return make_client(settings, manager)


def test_a_loopback_endpoint_is_refused_when_connecting(settings: Settings) -> None:
    with pytest.raises(BlockedDestinationError, match="private, loopback"):
        client(settings, allow_private=False).bucket_exists(settings.s3_bucket)


def test_a_name_for_loopback_is_refused_too(settings: Settings) -> None:
    endpoint = settings.s3_endpoint.replace("127.0.0.1", "localhost")
    with pytest.raises(BlockedDestinationError, match="refusing localhost"):
        client(settings, allow_private=False, endpoint=endpoint).bucket_exists("any")


def test_the_same_endpoint_works_when_private_networks_are_allowed(settings: Settings) -> None:
    endpoint = settings.s3_endpoint.replace("127.0.0.1", "localhost")
    assert client(settings, allow_private=True, endpoint=endpoint).bucket_exists(
        settings.s3_bucket) in {True, False}
    assert client(settings, allow_private=True).list_buckets() is not None


def test_a_name_rebound_to_loopback_after_the_check_is_refused(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name answers a public address to the check before the task, and
    loopback (where the real S3 server listens) when the client connects."""
    real = socket.getaddrinfo
    answers = iter([PUBLIC])

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "bucket.rebind.example":
            address = next(answers, "127.0.0.1")
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port or 0))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    endpoint = settings.s3_endpoint.replace("127.0.0.1", "bucket.rebind.example")
    _check_endpoint(endpoint, allow_private=False)  # passes: the name looks public
    with pytest.raises(BlockedDestinationError, match="refusing bucket.rebind.example"):
        client(settings, allow_private=False, endpoint=endpoint).bucket_exists("any")


def test_a_refused_endpoint_fails_the_task_without_retries() -> None:
    failure = s3_failure(BlockedDestinationError("refusing x"), "reading s3://b/k")
    assert isinstance(failure, ToolError)
    assert str(failure) == "reading s3://b/k: refusing x"


def test_a_name_that_fails_to_resolve_once_is_not_resolved_again_unchecked(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resolver that fails once and then answers loopback: the failure is the answer, not
    a reason to let urllib3 resolve (unchecked) on its own."""
    real = socket.getaddrinfo
    failed: list[bool] = []

    def flaky(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "flaky.rebind.example":
            if not failed:
                failed.append(True)
                raise socket.gaierror(socket.EAI_AGAIN, "temporary failure")
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port or 0))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", flaky)
    endpoint = settings.s3_endpoint.replace("127.0.0.1", "flaky.rebind.example")
    with pytest.raises(urllib3.exceptions.MaxRetryError) as raised:
        client(settings, allow_private=False, endpoint=endpoint).bucket_exists("any")
    assert isinstance(raised.value.reason, urllib3.exceptions.NameResolutionError)
    assert failed == [True]

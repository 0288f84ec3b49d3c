"""URLs given to clients are signed for CONVEYOR_S3_PUBLIC_ENDPOINT, offline (the service
may not reach that address); the signature check the integration tests rely on tells a URL
signed for its host from one whose host was rewritten afterwards."""

from __future__ import annotations

import pytest
import urllib3
from pydantic import SecretStr

from shared.objects import ObjectStore, make_client
from shared.settings import Settings
from tests.sigv4 import signed_for_its_host

# Nothing listens there: presigning must not need an answer.
INTERNAL = "http://127.0.0.1:1"
PUBLIC = "https://s3.example.invalid:8443"


@pytest.fixture
def settings() -> Settings:
    return Settings(_env_file=None, s3_endpoint=INTERNAL, s3_public_endpoint=PUBLIC,
                    s3_access_key="AKIATEST", s3_secret_key="test-secret",
                    s3_region="eu-central-1")


@pytest.fixture
def http() -> urllib3.PoolManager:
    return urllib3.PoolManager(retries=urllib3.Retry(total=0))


async def test_urls_are_signed_for_the_signers_address(
    settings: Settings, http: urllib3.PoolManager
) -> None:
    store = ObjectStore(make_client(settings, http), "conveyor",
                        make_client(settings, http, settings.s3_public_endpoint))
    get = await store.presigned_url("outputs/j1/a b+é.txt")
    put = await store.presigned_put_url("gate/app.zip")
    assert get.startswith(f"{PUBLIC}/conveyor/outputs/j1/a%20b")
    assert put.startswith(f"{PUBLIC}/conveyor/gate/app.zip?")
    assert signed_for_its_host(get, settings)
    assert signed_for_its_host(put, settings, "PUT")
    assert not signed_for_its_host(put, settings, "GET")  # a PUT URL does not download


async def test_without_a_signer_the_client_signs(
    settings: Settings, http: urllib3.PoolManager
) -> None:
    store = ObjectStore(make_client(settings, http), "conveyor")
    url = await store.presigned_url("outputs/j1/out.bin")
    assert url.startswith(f"{INTERNAL}/conveyor/outputs/j1/out.bin?")
    assert signed_for_its_host(url, settings)


async def test_a_url_whose_host_is_rewritten_after_signing_fails_the_check(
    settings: Settings, http: urllib3.PoolManager
) -> None:
    """What signing with the internal client and swapping the host would give: MinIO
    refuses it (SignatureDoesNotMatch), and so does the check."""
    store = ObjectStore(make_client(settings, http), "conveyor")
    url = (await store.presigned_url("outputs/j1/out.bin")).replace(INTERNAL, PUBLIC)
    assert not signed_for_its_host(url, settings)


async def test_other_credentials_or_region_fail_the_check(
    settings: Settings, http: urllib3.PoolManager
) -> None:
    url = await ObjectStore(make_client(settings, http), "conveyor").presigned_url("k")
    assert not signed_for_its_host(url, settings.model_copy(
        update={"s3_secret_key": SecretStr("other")}))
    assert not signed_for_its_host(url, settings.model_copy(update={"s3_region": "us-east-1"}))

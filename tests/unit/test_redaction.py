"""Secrets found in text (linear time), masked, sealed at rest and opened again."""

from __future__ import annotations

import logging
import time

import pytest
import structlog
from cryptography.fernet import Fernet
from yarl import URL

from shared.errors import ConfigError
from shared.logging import configure_logging
from shared.redaction import mask_text, redact, redact_text, secret_values
from shared.secrets import MARKER, SealedValueError, Sealer
from shared.settings import load_settings

SECRETS = {
    "https://alice:pw-userinfo-1@example.com/a": "pw-userinfo-1",
    "https://:pw-empty-user-2@example.com/a": "pw-empty-user-2",
    "https://example.com/a?token=tok-query-3&x=1": "tok-query-3",
    "https://b.s3.amazonaws.com/k?X-Amz-Signature=amzsig-4&X-Amz-Date=1": "amzsig-4",
    "https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIAEXAMPLE5%2F2026": "AKIAEXAMPLE5%2F2026",
    "https://example.com/a?x=1&access_token=acc-tok-6": "acc-tok-6",
    "https://blob.example.net/c?sv=1&sig=azure-sig-7": "azure-sig-7",
    "https://example.com/a?signature=sig-8#frag": "sig-8",
    "https://example.com/a?apikey=apikey-9": "apikey-9",
    "https://u:p@ss-with-at-10@example.com/": "p@ss-with-at-10",
}


@pytest.mark.parametrize("text", SECRETS)
def test_every_kind_of_secret_is_masked_and_the_rest_kept(text: str) -> None:
    masked = mask_text(text)
    assert SECRETS[text] not in masked
    assert "***" in masked
    assert masked.split("://")[1].split("/")[0].rsplit("@")[-1] in text  # the host stays


def test_plain_text_and_harmless_parameters_stay() -> None:
    for text in ("https://example.com/a?page=2&size=10", "https://user@example.com/",
                 "no url here: a=b", "s3://bucket/key"):
        assert mask_text(text) == text


def test_masking_is_linear_on_long_runs() -> None:
    """The pattern it replaces took 99 s on a 96,000-letter URL (quadratic backtracking)."""
    for text in ("https://" + "a" * 400_000, "a" * 400_000 + "://",
                 "://" + ":" * 200_000, "?" + "a" * 400_000, "&a=" * 100_000,
                 "https://" + "a://" * 100_000, "x:" * 200_000 + "@"):
        start = time.perf_counter()
        mask_text(text)
        assert time.perf_counter() - start < 0.5, text[:20]


def test_values_under_secret_keys_and_in_free_text() -> None:
    parameters = {"source": "https://:pw-2@h/x?sig=s-77", "credentials": {
        "endpoint": "https://s3.example.com", "secret_key": "sk-123", "access_key": "AK"}}
    shown = redact(parameters)
    assert shown["credentials"] == {"endpoint": "https://s3.example.com",
                                    "secret_key": "***", "access_key": "***"}
    found = secret_values(parameters)
    assert {"pw-2", "s-77", "sk-123"} <= set(found)
    line = "GET https://h/x failed for pw-2 and sk-123"
    assert redact_text(line, found) == "GET https://h/x failed for *** and ***"


def test_sealed_values_are_opened_and_masked_like_the_secret() -> None:
    sealer = Sealer([Fernet.generate_key().decode()])
    document = {"notify": "https://:hook-pw@h/n", "parameters": {
        "source": "https://h/x?X-Amz-Signature=abc123&page=1",
        "credentials": {"password": "pw-9", "username": "bob"}}}
    sealed = sealer.seal(document)
    flat = repr(sealed)
    for secret in ("hook-pw", "abc123", "pw-9"):
        assert secret not in flat
    assert flat.count(MARKER) == 3
    assert sealer.seal(sealed) == sealed  # sealing twice changes nothing
    assert redact(sealed) == redact(document)
    assert sealer.open(sealed) == document


def test_rotation_keeps_old_keys_opening_and_a_foreign_key_is_an_error() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed = Sealer([old]).seal({"token": "t-1"})
    assert Sealer([new, old]).open(sealed) == {"token": "t-1"}
    with pytest.raises(SealedValueError, match="CONVEYOR_SECRETS_KEY"):
        Sealer([new]).open(sealed)


def test_the_key_setting_is_a_list_of_fernet_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = [Fernet.generate_key().decode() for _ in range(2)]
    monkeypatch.setenv("CONVEYOR_SECRETS_KEY", " , ".join(keys))
    assert load_settings().secrets_keys == keys
    monkeypatch.setenv("CONVEYOR_SECRETS_KEY", "not-a-key")
    with pytest.raises(ConfigError, match="CONVEYOR_SECRETS_KEY: key 1 is not a Fernet") as exc:
        load_settings()
    assert "not-a-key" not in str(exc.value)
    monkeypatch.delenv("CONVEYOR_SECRETS_KEY")
    assert len(load_settings().secrets_keys) == 1


def test_every_log_line_has_its_secrets_masked(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """structlog's lines (event, fields, nested values, exceptions) and the standard
    library's records, as every service writes them."""
    configure_logging("info", "json")
    try:
        try:
            raise ValueError("GET https://:pw-in-exc@h/x failed")
        except ValueError:
            structlog.get_logger("test").exception(
                "fetch https://u:pw-in-event@h/", url=URL("https://h/x?sig=pw-in-url"),
                nested={"password": "pw-in-key", "list": ["https://h/?token=pw-in-list"]})
        logging.getLogger("library").warning("retrying https://h/?X-Amz-Signature=%s",
                                             "pw-std")
    finally:
        # The configuration holds this test's captured stderr, closed after it.
        structlog.reset_defaults()
    # (Under pytest the standard library's records go to its own handler, filtered too.)
    written = capsys.readouterr().err + caplog.text
    assert "ValueError" in written
    assert "retrying https://h/?X-Amz-Signature=***" in written
    assert [word for word in ("pw-in-exc", "pw-in-event", "pw-in-url", "pw-in-key",
                              "pw-in-list", "pw-std") if word in written] == []


def test_a_logged_traceback_carries_no_local_variables(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A local variable may hold a credential under a name no pattern knows."""

    def fails() -> None:
        creds = {"k": "hunter2-in-a-local"}
        raise RuntimeError(f"failed with {len(creds)} values")

    configure_logging("info", "json")
    try:
        try:
            fails()
        except RuntimeError:
            structlog.get_logger("test").exception("it broke")
    finally:
        structlog.reset_defaults()  # the configuration holds this test's captured stderr
    err = capsys.readouterr().err
    assert "it broke" in err
    assert "failed with 1 values" in err
    assert "hunter2-in-a-local" not in err

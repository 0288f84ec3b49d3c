"""Redaction, the download guard, workspace paths and globbing."""

from typing import Any

import pytest
from yarl import URL

from services.worker.tools.storage import default_name, glob_to_regex
from shared.jobs import parse_status, redact, redact_text, secret_values
from shared.netguard import BlockedDestinationError, check_url, forbidden_address
from shared.toolspecs import check_workspace_path


def test_redact_masks_secrets_but_keeps_the_shape() -> None:
    parameters: dict[str, Any] = {"source": "https://user:pw@example.com/a", "credentials": {
        "access_key": "AK", "secret_key": "SK", "endpoint": "https://s3.example.com"},
        "list": [{"token": "T"}], "empty_password": None}
    shown = redact(parameters)
    assert shown == {"source": "https://user:***@example.com/a", "credentials": {
        "access_key": "***", "secret_key": "***", "endpoint": "https://s3.example.com"},
        "list": [{"token": "***"}], "empty_password": None}
    assert parameters["credentials"]["secret_key"] == "SK"  # a copy, not in place
    assert sorted(secret_values(parameters)) == ["AK", "SK", "T", "pw"]  # the URL's too
    assert redact_text("failed with SK at https://u:p@h/x", ["SK"]) == (
        "failed with *** at https://u:***@h/x")


@pytest.mark.parametrize(
    ("address", "forbidden"),
    [("127.0.0.1", True), ("10.1.2.3", True), ("192.168.0.1", True), ("172.16.5.4", True),
     ("169.254.169.254", True), ("::1", True), ("fe80::1", True), ("::ffff:127.0.0.1", True),
     ("0.0.0.0", True), ("8.8.8.8", False), ("2606:4700::1111", False)],
)
def test_forbidden_addresses(address: str, forbidden: bool) -> None:
    assert forbidden_address(address) is forbidden


def test_check_url_refuses_literal_private_hosts_and_other_schemes() -> None:
    with pytest.raises(BlockedDestinationError, match="refusing 169.254.169.254"):
        check_url(URL("http://169.254.169.254/latest/meta-data"), allow_private=False)
    with pytest.raises(BlockedDestinationError, match="only http and https"):
        check_url(URL("file:///etc/passwd"), allow_private=True)
    check_url(URL("http://127.0.0.1/x"), allow_private=True)
    check_url(URL("https://example.com/x"), allow_private=False)


@pytest.mark.parametrize("path", ["", "/abs", "a/../b", "..", "./a", "a//b", "a\\b", "a*"])
def test_bad_workspace_paths(path: str) -> None:
    with pytest.raises(ValueError, match="must"):
        check_workspace_path(path)


def test_good_workspace_paths() -> None:
    assert check_workspace_path("a/b.mp4") == "a/b.mp4"
    assert check_workspace_path("out/**/*.ts", glob=True) == "out/**/*.ts"


@pytest.mark.parametrize(
    ("pattern", "matches", "misses"),
    [("*.txt", ["a.txt"], ["d/a.txt", "a.txt2"]),
     ("**/*.txt", ["a.txt", "d/a.txt", "d/e/a.txt"], ["a.txt.bak"]),
     ("d/**", ["d/a", "d/e/f"], ["e/a"]),
     ("a?.bin", ["a1.bin"], ["a12.bin", "a/.bin"]),
     ("x[1].bin", ["x[1].bin"], ["x1.bin"])],
)
def test_glob(pattern: str, matches: list[str], misses: list[str]) -> None:
    regex = glob_to_regex(pattern)
    assert all(regex.match(name) for name in matches)
    assert not any(regex.match(name) for name in misses)


def test_default_names() -> None:
    assert default_name("https://h/path/My%20Film.mp4?x=1") == "My Film.mp4"
    assert default_name("https://h/") == "download"
    assert default_name("s3://b/dir/clip.mov") == "clip.mov"


def test_parse_status() -> None:
    assert parse_status("2").text == "Completed"
    assert parse_status("failed").value == 3
    with pytest.raises(ValueError, match="unknown status 'done'"):
        parse_status("done")

"""A tool's failure, shown to the user, never names the worker's scratch directory."""

import re
from pathlib import Path

import pytest

from services.worker.annotation.documents import ArchiveError, InputOptions, read_documents
from services.worker.context import ToolError
from services.worker.tools.scratch import hide_scratch, without_scratch
from shared.errors import TransientError
from shared.media import MediaError
from shared.params import check_printable
from shared.toolspecs import check_workspace_path

ROOTS = ["/var/tmp/conveyor-J-1-abc"]


def test_paths_are_shown_by_their_place_in_the_workspace() -> None:
    assert hide_scratch("/var/tmp/conveyor-J-1-abc/in/a/b.mp4: bad", ROOTS) == "a/b.mp4: bad"
    assert hide_scratch("'/var/tmp/conveyor-J-1-abc/out/x_360p.mp4'", ROOTS) == (
        "'out/x_360p.mp4'")
    assert hide_scratch("in /var/tmp/conveyor-J-1-abc", ROOTS) == "in ."


def test_errors_keep_their_class_and_lose_the_path() -> None:
    missing = without_scratch(FileNotFoundError(
        2, "No such file or directory", "/var/tmp/conveyor-J-1-abc/in/clip.mp4"), ROOTS)
    assert isinstance(missing, FileNotFoundError)
    assert str(missing) == "[Errno 2] No such file or directory: 'clip.mp4'"
    media = without_scratch(MediaError("ffmpeg failed: /var/tmp/conveyor-J-1-abc/in/c.mp4"),
                            ROOTS)
    assert isinstance(media, MediaError)
    assert str(media) == "ffmpeg failed: c.mp4"
    same = ValueError("nothing to hide")
    assert without_scratch(same, ROOTS) is same


class Rendered(TransientError):
    """An exception whose text does not come from its arguments."""

    def __str__(self) -> str:
        return "at /var/tmp/conveyor-J-1-abc/x"


def test_an_exception_that_renders_itself_becomes_one_of_ours() -> None:
    clean = without_scratch(Rendered(), ROOTS)
    assert isinstance(clean, TransientError)
    assert str(clean) == "at x"
    assert isinstance(without_scratch(ExceptionGroup(
        "/var/tmp/conveyor-J-1-abc/in/a", [ValueError()]), ROOTS), ToolError)


@pytest.mark.parametrize(("value", "code"), [
    ("a\x00b", "U+0000 at position 1"), ("\tx", "U+0009 at position 0"),
    ("x\x9b", "U+009B at position 1"), ("x\ud800", "U+D800 at position 1"),
])
def test_control_characters_are_named_with_their_position(value: str, code: str) -> None:
    expected = re.escape(f"must not contain control characters ({code})")
    with pytest.raises(ValueError, match=expected):
        check_printable(value)
    with pytest.raises(ValueError, match="control characters"):
        check_workspace_path(value)


def test_printable_unicode_paths_pass() -> None:
    assert check_workspace_path("vidéos/日本/clip 1.mp4") == "vidéos/日本/clip 1.mp4"
    assert Path(check_printable("a b")).name == "a b"


@pytest.mark.parametrize("kind", ["ZIP", "TAR", "ARC"])
def test_an_unreadable_gate_input_is_reported_without_its_path(kind: str, tmp_path: Path) -> None:
    missing = tmp_path / "scratch-dir" / "input-1"
    with pytest.raises(ArchiveError) as caught:
        list(read_documents(missing, InputOptions(type=kind)))
    assert str(tmp_path) not in str(caught.value)
    assert "input-1" in str(caught.value)

"""Which keys of the platform's bucket a task without credentials may read and write."""

import pytest

from services.worker.tools.storage import platform_key_allowed

OWN = ("jobs/J1/", "outputs/J1/")


@pytest.mark.parametrize(("key", "read", "write"), [
    ("jobs/J1/a.txt", True, True),
    ("outputs/J1/x/b.mp4", True, True),
    ("samples/hello.txt", True, False),
    ("samples/", True, False),
    ("jobs/J2/a.txt", False, False),
    ("outputs/J10/a.txt", False, False),
    ("jobs/J1", False, False),
    ("jobs/J1/../../samples/hello.txt", False, False),
    ("outputs/J1/./a", False, False),
    ("jobs/J1//a", False, False),
    ("samples/../jobs/J2/a", False, False),
    ("gate/x", False, False),
    ("", False, False),
])
def test_platform_areas(key: str, read: bool, write: bool) -> None:
    assert platform_key_allowed(key, OWN, write=False) is read
    assert platform_key_allowed(key, OWN, write=True) is write

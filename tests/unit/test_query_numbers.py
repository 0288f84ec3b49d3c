"""Numbers in query strings, paths and cursors: digits other than ASCII ones (`³`, which
`str.isdigit` accepts and `int` refuses) and numbers too long or too large for `int` or the
store are a 400 or a 404 that names them, never a 500 (found by schemathesis)."""

import base64

import pytest
from aiohttp.test_utils import make_mocked_request

from services.logger.views import MAX_POSITION, decode_cursor, encode_cursor
from shared.api import ApiError, int_query
from shared.jobs import Status, parse_status
from shared.numbers import whole_number

NOT_NUMBERS = ["", "-1", "+1", " 1", "1.0", "³", "٣", "1²", "1" * 5000]


@pytest.mark.parametrize(("raw", "number"), [("0", 0), ("12", 12), ("007", 7)])
def test_whole_numbers(raw: str, number: int) -> None:
    assert whole_number(raw) == number


@pytest.mark.parametrize("raw", NOT_NUMBERS)
def test_what_is_no_whole_number(raw: str) -> None:
    assert whole_number(raw) is None


@pytest.mark.parametrize("raw", ["%C2%B3", "%D9%A3", "0", "101", "1" * 5000])
def test_a_bad_query_number_is_a_400_naming_it(raw: str) -> None:
    request = make_mocked_request("GET", f"/api/jobs/?page_size={raw}")
    with pytest.raises(ApiError) as raised:
        int_query(request, "page_size", 20, 1, 100)
    assert raised.value.status == 400
    assert raised.value.errors == [{"field": "page_size",
                                    "message": "must be a whole number 1-100"}]


def test_a_good_query_number() -> None:
    assert int_query(make_mocked_request("GET", "/?limit=42"), "limit", 1, 1, 100) == 42
    assert int_query(make_mocked_request("GET", "/"), "limit", 7, 1, 100) == 7


@pytest.mark.parametrize("raw", ["³", "٢", "1" * 5000, "6"])
def test_a_status_that_is_none_says_which_there_are(raw: str) -> None:
    with pytest.raises(ValueError, match="unknown status .*0 \\(Queued\\)"):
        parse_status(raw)


def test_statuses_by_number_and_name() -> None:
    assert parse_status("2") is parse_status("completed") is Status.COMPLETED


@pytest.mark.parametrize("position", ["³", str(MAX_POSITION), "9" * 5000])
def test_a_cursor_past_what_the_store_holds_is_a_400(position: str) -> None:
    raw = base64.urlsafe_b64encode(position.encode()).decode().rstrip("=")
    with pytest.raises(ApiError) as raised:
        decode_cursor(raw)
    assert raised.value.errors[0]["field"] == "cursor"


def test_the_largest_cursor_round_trips() -> None:
    assert decode_cursor(encode_cursor(MAX_POSITION - 1)) == MAX_POSITION - 1

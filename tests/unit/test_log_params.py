from datetime import UTC, datetime, timedelta, timezone

import pytest
from aiohttp.test_utils import make_mocked_request

from services.logger.views import decode_cursor, encode_cursor, iso_date, parse_moment
from shared.api import ApiError


def test_cursor_round_trip() -> None:
    assert decode_cursor(encode_cursor(2**32 + 5)) == 2**32 + 5
    with pytest.raises(ApiError):
        decode_cursor("not*base64")


@pytest.mark.parametrize(
    ("query", "expected"),
    [("2012-09-01T10:00:00", datetime(2012, 9, 1, 10, tzinfo=UTC)),
     ("2012-09-01T10:00:00Z", datetime(2012, 9, 1, 10, tzinfo=UTC)),
     ("2012-09-01T10:00:00%2B02:00", datetime(2012, 9, 1, 8, tzinfo=UTC)),
     ("2012-09-01T10:00:00+02:00", datetime(2012, 9, 1, 8, tzinfo=UTC)),
     ("2012-09-01T10:00:00-05:30", datetime(2012, 9, 1, 15, 30, tzinfo=UTC))],
)
def test_parse_moment(query: str, expected: datetime) -> None:
    request = make_mocked_request("GET", f"/api/job/x/log?from={query}")
    assert parse_moment(request, "from") == expected


def test_iso_date_is_utc() -> None:
    moment = datetime(2012, 9, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert iso_date(moment) == "2012-09-01T10:00:00.000Z"

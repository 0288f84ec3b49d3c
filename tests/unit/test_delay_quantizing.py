"""Retry delays wait in TTL queues, one queue per delay: delays are rounded so that few exist."""

from __future__ import annotations

import pytest

from shared.topology import quantize_delay_ms


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0.0, 100), (0.04, 100), (0.26, 300), (2.349, 2300), (12.4, 12000), (299.6, 300000)],
)
def test_delays_are_quantized(seconds: float, expected: int) -> None:
    assert quantize_delay_ms(seconds) == expected

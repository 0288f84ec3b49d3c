import random

import pytest

from shared.consumer import RetryPolicy
from shared.topology import quantize_delay_ms


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=1.0, max_delay=30.0)
    rng = random.Random(7)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0), (6, 30.0), (9, 30.0)]:
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert max(delays) - min(delays) > ceiling / 10  # jitter spreads retries out


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0.0, 100), (0.04, 100), (0.26, 300), (2.349, 2300), (12.4, 12000), (299.6, 300000)],
)
def test_delays_are_quantized(seconds: float, expected: int) -> None:
    assert quantize_delay_ms(seconds) == expected

"""The token bucket on an injected clock, and what it costs on the hot path."""

from __future__ import annotations

import time

import pytest

from modelplane.resources.ratelimit import RateLimiter, refill
from modelplane.testing.clock import FakeClock


def test_refill_is_pure() -> None:
    assert refill(0.0, 0.0, 0.5, rate=2, burst=2) == (0.0, 0.0)
    tokens, wait = refill(0.0, 0.0, 0.25, rate=2, burst=2)
    assert tokens == 0.5 and wait == pytest.approx(0.25)
    assert refill(0.0, 0.0, 100.0, rate=2, burst=2) == (1.0, 0.0)  # capped at burst


def test_burst_then_steady_rate_per_key() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=5)
    passed = [limiter.check("a", clock.now()) == 0 for _ in range(7)]
    assert passed == [True] * 5 + [False] * 2
    assert limiter.check("b", clock.now()) == 0, "another token has its own bucket"
    wait = limiter.check("a", clock.now())
    assert wait == pytest.approx(0.2)
    clock.advance(0.2)
    assert limiter.check("a", clock.now()) == 0
    assert limiter.check("a", clock.now()) > 0


def test_rejects_nonsense_rate() -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate=0)


def test_cheap_enough_for_the_hot_path() -> None:
    """A check is well under a microsecond or two: noise next to a prediction's ~100 µs."""
    limiter = RateLimiter(rate=1e9)
    n = 200_000
    started = time.perf_counter()
    for i in range(n):
        limiter.check(i & 7, float(i))
    per_call = (time.perf_counter() - started) / n
    assert per_call < 5e-6, f"{per_call * 1e9:.0f} ns per check"

"""Requests per second per token: a token bucket.

``refill`` is the pure decision; :class:`RateLimiter` keeps one bucket per key and is cheap
enough for the prediction hot path (a dict lookup and a few float operations; the caller passes
``now``, so tests drive time by hand).
"""

from __future__ import annotations

from collections.abc import Hashable


def refill(
    tokens: float, updated: float, now: float, rate: float, burst: float
) -> tuple[float, float]:
    """Take one request from a bucket holding ``tokens`` at ``updated``.

    Returns ``(tokens_after, wait)``: ``wait == 0`` means the request passes (and one token was
    taken); otherwise the bucket is unchanged but for its refill and ``wait`` is the seconds until
    a token is there.
    """
    tokens = min(burst, tokens + (now - updated) * rate)
    if tokens >= 1.0:
        return tokens - 1.0, 0.0
    return tokens, (1.0 - tokens) / rate


class RateLimiter:
    """``rate`` requests per second per key, in bursts of at most ``burst`` (default: ``rate``,
    at least 1)."""

    __slots__ = ("_buckets", "burst", "max_keys", "rate")

    def __init__(self, rate: float, burst: float | None = None, max_keys: int = 100_000) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0 requests per second")
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate)
        self.max_keys = max_keys
        self._buckets: dict[Hashable, list[float]] = {}

    def check(self, key: Hashable, now: float) -> float:
        """0.0 if a request under ``key`` may pass now (and count it), else seconds to wait."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._buckets.clear()  # bounded memory; a reset only ever lets more through
            self._buckets[key] = [self.burst - 1.0, now]
            return 0.0
        tokens, wait = refill(bucket[0], bucket[1], now, self.rate, self.burst)
        bucket[0] = tokens
        bucket[1] = now
        return wait

"""The traffic history behind the dashboard's charts: quantiles from histogram differences,
bounded memory, counters that reset, deployments that go."""

from __future__ import annotations

import pytest

from modelplane.history import History, Reading, quantile
from modelplane.metrics import LATENCY_BUCKETS

N = len(LATENCY_BUCKETS) + 1


def buckets(**at: int) -> tuple[int, ...]:
    """Counts per bucket, by the index of the bucket: buckets(b3=5) puts 5 in bucket 3."""
    out = [0] * N
    for key, n in at.items():
        out[int(key[1:])] = n
    return tuple(out)


def reading(requests: int, lat: tuple[int, ...], *, errors: int = 0, ready: int = 1) -> Reading:
    return Reading(requests, errors, 0, lat, ready=ready, desired=1)


def test_quantile_interpolates_inside_the_bucket_like_prometheus() -> None:
    # 10 requests, all in the bucket (0.001, 0.0025]: the median is halfway through it
    counts = buckets(b2=10)
    assert quantile(0.5, counts) == pytest.approx(0.001 + 0.0015 * 0.5)
    assert quantile(1.0, counts) == pytest.approx(0.0025)


def test_quantile_of_a_spread_histogram_lands_in_the_slow_tail() -> None:
    counts = buckets(b0=99, b10=1)  # 99 fast requests, one around a second
    assert quantile(0.5, counts) < 0.0005
    assert 0.5 < quantile(0.995, counts) <= 1.0  # type: ignore[operator]


def test_quantile_of_the_overflow_bucket_is_the_largest_bound_and_empty_is_none() -> None:
    assert quantile(0.99, buckets(**{f"b{N - 1}": 3})) == LATENCY_BUCKETS[-1]
    assert quantile(0.99, buckets()) is None
    with pytest.raises(ValueError):
        quantile(1.5, buckets(b1=1))


def test_points_are_differences_between_readings_per_interval() -> None:
    h = History()
    h.record(100.0, {"echo": reading(0, buckets())})
    assert h.points("echo") == []  # the first reading is only a baseline
    h.record(102.0, {"echo": reading(10, buckets(b2=10), errors=1)})
    h.record(104.0, {"echo": reading(10, buckets(b2=10), errors=1)})
    first, second = h.points("echo")
    assert first["requests"] == 10
    assert first["requests_per_min"] == 300.0  # 10 in 2 s
    assert first["errors"] == 1
    assert first["p50_ms"] == pytest.approx(1.75)
    assert second["requests"] == 0 and second["errors"] == 0 and second["p99_ms"] is None
    assert [p["at"] for p in h.points("echo", since=102.0)] == [104.0]


def test_summary_covers_the_last_minute_only() -> None:
    h = History()
    h.record(0.0, {"d": reading(0, buckets())})
    h.record(10.0, {"d": reading(100, buckets(b10=100), errors=5)})  # a slow, failing burst
    for i in range(2, 10):  # then 80 s of quiet, fast traffic
        h.record(i * 10.0, {"d": reading(100 + (i - 1) * 60, buckets(b10=100, b1=(i - 1) * 60))})
    s = h.summary("d")
    assert s["errors"] == 0  # the burst is more than a minute old
    assert s["requests_per_min"] == 360.0
    assert s["p99_ms"] is not None and s["p99_ms"] <= 1.0


def test_history_is_bounded_and_forgets_removed_deployments() -> None:
    h = History(keep=5)
    for i in range(50):
        h.record(float(i), {"a": reading(i, buckets(b1=i)), "b": reading(0, buckets())})
    assert len(h.points("a")) == 5
    h.record(51.0, {"a": reading(51, buckets(b1=51))})
    assert h.points("b") == []
    assert h.summary("b")["requests_per_min"] == 0.0


def test_a_counter_reset_does_not_produce_negative_traffic() -> None:
    h = History()
    h.record(0.0, {"d": reading(500, buckets(b1=500))})
    h.record(2.0, {"d": reading(3, buckets(b1=3))})  # re-created: the counters started again
    (point,) = h.points("d")
    assert point["requests"] == 3

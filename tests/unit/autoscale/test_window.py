"""ConcurrencyWindow: time-weighted averages over windows ending at an explicit ``now``."""

from __future__ import annotations

import pytest

from modelplane.autoscale import ConcurrencyWindow


def test_empty_window_averages_zero() -> None:
    window = ConcurrencyWindow(horizon=30.0)
    assert window.average(100.0, 30.0) == 0.0
    assert window.last_active_at is None


def test_constant_signal_averages_to_itself() -> None:
    window = ConcurrencyWindow(horizon=30.0)
    for step in range(100):
        window.record(step * 0.1, 3.0)
    assert window.average(10.0, 3.0) == pytest.approx(3.0)
    assert window.average(10.0, 30.0) == pytest.approx(3.0)


def test_window_shorter_history_averages_over_history_only() -> None:
    # A fresh deployment must not be diluted by zeros from before its first sample.
    window = ConcurrencyWindow(horizon=60.0)
    window.record(50.0, 4.0)
    assert window.average(52.0, 60.0) == pytest.approx(4.0)


def test_step_is_weighted_by_time_held() -> None:
    window = ConcurrencyWindow(horizon=60.0)
    window.record(0.0, 0.0)
    window.record(20.0, 6.0)  # 0 for 20 s, then 6 for 10 s
    assert window.average(30.0, 30.0) == pytest.approx(2.0)
    assert window.average(30.0, 10.0) == pytest.approx(6.0)
    assert window.average(30.0, 20.0) == pytest.approx(3.0)


def test_average_is_independent_of_sampling_rate() -> None:
    fine = ConcurrencyWindow(horizon=30.0)
    coarse = ConcurrencyWindow(horizon=30.0)
    for tenth in range(300):
        t = tenth / 10
        value = 8.0 if t >= 25 else 1.0
        fine.record(t, value)
        if tenth % 10 == 0:
            coarse.record(t, value)
    assert fine.average(30.0, 30.0) == pytest.approx(coarse.average(30.0, 30.0))
    assert fine.average(30.0, 30.0) == pytest.approx((25 * 1 + 5 * 8) / 30)


def test_unaligned_window_edge_is_prorated() -> None:
    window = ConcurrencyWindow(horizon=30.0, granularity=1.0)
    window.record(0.0, 10.0)
    window.record(5.0, 0.0)
    # [2.5, 10]: 10 for 2.5 s, then 0 for 5 s.
    assert window.average(10.0, 7.5) == pytest.approx(25.0 / 7.5)


def test_last_value_holds_until_now() -> None:
    window = ConcurrencyWindow(horizon=30.0)
    window.record(0.0, 0.0)
    window.record(29.0, 30.0)  # the burst started one second ago and still runs
    assert window.average(30.0, 3.0) == pytest.approx(10.0)
    assert window.average(30.0, 30.0) == pytest.approx(1.0)


def test_old_samples_leave_the_window() -> None:
    window = ConcurrencyWindow(horizon=30.0)
    window.record(0.0, 50.0)
    window.record(10.0, 0.0)
    assert window.average(10.0, 30.0) == pytest.approx(50.0)
    assert window.average(40.0, 30.0) == pytest.approx(0.0)
    assert window.average(41.0, 30.0) == 0.0


def test_memory_is_bounded_by_horizon() -> None:
    window = ConcurrencyWindow(horizon=30.0, granularity=1.0)
    for tenth in range(36_000):  # one hour sampled every 0.1 s
        window.record(tenth / 10, 5.0)
    assert len(window) <= 32
    assert window.average(3600.0, 30.0) == pytest.approx(5.0)


def test_long_gap_costs_no_more_memory() -> None:
    window = ConcurrencyWindow(horizon=10.0)
    window.record(0.0, 2.0)
    window.record(1_000_000.0, 0.0)
    assert len(window) <= 12
    assert window.average(1_000_000.0, 10.0) == pytest.approx(2.0)


def test_late_sample_does_not_move_time_backwards() -> None:
    window = ConcurrencyWindow(horizon=30.0)
    window.record(10.0, 1.0)
    window.record(9.5, 3.0)  # a racing producer; it replaces the current value
    window.record(12.0, 3.0)
    assert window.average(12.0, 2.0) == pytest.approx(3.0)


def test_last_active_at_tracks_non_zero_samples() -> None:
    window = ConcurrencyWindow(horizon=30.0)
    window.record(1.0, 0.0)
    window.record(2.0, 1.0)
    window.record(3.0, 0.0)
    assert window.last_active_at == 2.0
    assert window.last_value == 0.0


@pytest.mark.parametrize(("horizon", "granularity"), [(10.0, 0.0), (0.5, 1.0), (10.0, -1.0)])
def test_rejects_bad_construction(horizon: float, granularity: float) -> None:
    with pytest.raises(ValueError, match=r"granularity|horizon"):
        ConcurrencyWindow(horizon=horizon, granularity=granularity)


def test_rejects_negative_samples_and_oversized_windows() -> None:
    window = ConcurrencyWindow(horizon=30.0)
    with pytest.raises(ValueError, match="concurrency"):
        window.record(0.0, -1.0)
    with pytest.raises(ValueError, match="window"):
        window.average(0.0, 31.0)
    with pytest.raises(ValueError, match="window"):
        window.average(0.0, 0.0)


def test_package_exports_exactly_its_public_names() -> None:
    import modelplane.autoscale as autoscale

    exported = {name for name in dir(autoscale) if not name.startswith("_")}
    assert set(autoscale.__all__) == exported - {
        "policy",
        "window",
        "loop",
        "tracker",
        "annotations",
    }

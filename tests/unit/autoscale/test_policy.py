"""The scaling policy, driven with explicit time: minutes of traffic replay in milliseconds."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest

from modelplane.autoscale import (
    ConcurrencyWindow,
    Decision,
    PolicyState,
    ScaleConfig,
    ScaleContext,
    decide,
)
from modelplane.errors import InvalidSpec

Trace = Sequence[tuple[float, float]]  # (from this time on, this many concurrent requests)


def _concurrency_at(trace: Trace, t: float) -> float:
    value = 0.0
    for start, concurrency in trace:
        if start > t:
            break
        value = concurrency
    return value


def simulate(
    config: ScaleConfig,
    trace: Trace,
    *,
    until: float,
    tick: float = 1.0,
    sample: float = 0.1,
    replicas: int = 0,
) -> list[tuple[float, int]]:
    """Replay a concurrency trace through a window and the policy; return (time, replicas).

    Actuation is instantaneous: the next tick sees the count the previous one asked for. While
    at zero, the gateway holds the requests, so they show as queued instead of in flight.
    """
    window = ConcurrencyWindow(horizon=config.stable_window)
    state = PolicyState()
    last_request_at: float | None = None
    samples_per_tick = round(tick / sample)
    trajectory: list[tuple[float, int]] = []
    for step in range(round(until / sample) + 1):
        t = round(step * sample, 6)
        concurrency = _concurrency_at(trace, t)
        window.record(t, concurrency)
        if concurrency > 0:
            last_request_at = t
        if step % samples_per_tick:
            continue
        waiting = round(concurrency)
        ctx = ScaleContext.from_window(
            window,
            config,
            t,
            replicas=replicas,
            in_flight=waiting if replicas else 0,
            queued_requests=0 if replicas else waiting,
            last_request_at=last_request_at,
        )
        decision, state = decide(config, ctx, state, t)
        assert config.min_replicas <= decision.desired_replicas <= config.max_replicas
        replicas = decision.desired_replicas
        trajectory.append((t, replicas))
    return trajectory


def _at(trajectory: list[tuple[float, int]], t: float) -> int:
    return dict(trajectory)[t]


def _decide(config: ScaleConfig, now: float = 1000.0, **ctx: float | int | None) -> Decision:
    decision, _ = decide(config, ScaleContext(**ctx), PolicyState(), now)  # type: ignore[arg-type]
    return decision


# --- trajectories ------------------------------------------------------------------------------


def test_burst_from_zero_reaches_max_within_a_second() -> None:
    config = ScaleConfig(target_concurrency=1, max_replicas=4)
    trajectory = simulate(config, [(0.0, 0.0), (10.0, 64.0)], until=40.0)
    assert all(replicas == 0 for t, replicas in trajectory if t < 10)
    assert _at(trajectory, 10.0) >= 1  # scale from zero on the first tick that sees demand
    assert _at(trajectory, 11.0) == 4
    assert all(replicas == 4 for t, replicas in trajectory if t >= 11)


def test_steady_noisy_load_does_not_flap() -> None:
    config = ScaleConfig(target_concurrency=1, max_replicas=10)
    noisy = [(i / 10, 2.0 if i % 2 else 4.0) for i in range(1200)]  # mean 3, +-1 every sample
    trajectory = simulate(config, noisy, until=119.0)
    # The very first sample (4 at once, from zero) is a burst: panic holds 4 for a stable window.
    assert _at(trajectory, 0.0) == 4
    settled = [replicas for t, replicas in trajectory if t >= 31]
    assert set(settled) == {3}
    changes = sum(1 for a, b in itertools.pairwise(trajectory) if a[1] != b[1])
    assert changes == 1  # 4 -> 3 once the panic ends, then nothing


def test_trickle_below_idle_timeout_keeps_one_replica() -> None:
    config = ScaleConfig(target_concurrency=1, idle_timeout=60.0)
    trace = [step for k in range(10) for step in ((50.0 * k, 1.0), (50.0 * k + 0.5, 0.0))]
    trajectory = simulate(config, trace, until=480.0)
    assert {replicas for _, replicas in trajectory} == {1}


def test_idle_period_returns_to_zero_exactly_after_idle_timeout() -> None:
    config = ScaleConfig(target_concurrency=1, idle_timeout=60.0)
    trajectory = simulate(config, [(0.0, 2.0), (10.0, 0.0)], until=120.0)
    # The last sample with a request is at 9.9 s, so the timeout expires at 69.9 s.
    assert _at(trajectory, 10.0) == 2
    assert all(replicas >= 1 for t, replicas in trajectory if t < 69.9)
    assert _at(trajectory, 69.0) == 1
    assert all(replicas == 0 for t, replicas in trajectory if t >= 70)


def test_load_that_steps_up_and_down_follows_the_stable_average() -> None:
    config = ScaleConfig(target_concurrency=2, max_replicas=8, idle_timeout=30.0)
    trace = [(0.0, 4.0), (60.0, 12.0), (120.0, 2.0), (180.0, 0.0)]
    trajectory = simulate(config, trace, until=260.0)
    assert _at(trajectory, 59.0) == 2
    assert _at(trajectory, 119.0) == 6
    assert _at(trajectory, 179.0) == 1
    assert _at(trajectory, 260.0) == 0
    changes = sum(1 for a, b in itertools.pairwise(trajectory) if a[1] != b[1])
    assert changes <= 12  # monotone ramps, no oscillation


# --- single decisions --------------------------------------------------------------------------


def test_idle_boundary_is_exact() -> None:
    config = ScaleConfig(target_concurrency=1, idle_timeout=60.0)
    before = _decide(config, now=159.999, replicas=2, last_request_at=100.0)
    at = _decide(config, now=160.0, replicas=2, last_request_at=100.0)
    assert before.desired_replicas == 1
    assert "idle timeout" in before.reason
    assert at.desired_replicas == 0
    assert at.reason == "idle for 60 s: scale to zero"


def test_no_scale_to_zero_while_anything_is_in_flight_or_queued() -> None:
    config = ScaleConfig(target_concurrency=1, idle_timeout=60.0)
    for waiting in ({"in_flight": 1}, {"queued_requests": 1}, {"queued_jobs": 1}):
        decision = _decide(config, now=1000.0, replicas=1, last_request_at=0.0, **waiting)
        assert decision.desired_replicas == 1, waiting


def test_idle_with_min_above_zero_stays_at_min() -> None:
    config = ScaleConfig(min_replicas=2, max_replicas=5, target_concurrency=1)
    decision = _decide(config, replicas=3, last_request_at=None)
    assert decision.desired_replicas == 2
    assert "min 2" in decision.reason


def test_zero_stays_zero_without_demand() -> None:
    decision = _decide(ScaleConfig(), replicas=0, last_request_at=None)
    assert decision == Decision(0, "idle: stay at zero")


@pytest.mark.parametrize("field", ["queued_requests", "in_flight", "queued_jobs"])
def test_any_waiting_work_scales_from_zero(field: str) -> None:
    config = ScaleConfig(target_concurrency=4)
    decision = _decide(config, replicas=0, **{field: 1})
    assert decision.desired_replicas == 1
    assert "scale from zero" in decision.reason


def test_queued_jobs_count_as_demand() -> None:
    config = ScaleConfig(target_concurrency=4, max_replicas=10)
    decision = _decide(
        config,
        replicas=1,
        stable_concurrency=4.0,
        panic_concurrency=4.0,
        queued_jobs=8,
        last_request_at=999.0,
    )
    assert decision.desired_replicas == 3  # (4 + 8) / 4


def test_panic_holds_while_burst_fades_then_leaves_after_stable_window() -> None:
    config = ScaleConfig(target_concurrency=1, max_replicas=20, stable_window=30.0)
    state = PolicyState()
    burst = ScaleContext(
        replicas=1,
        stable_concurrency=1.0,
        panic_concurrency=10.0,
        in_flight=10,
        last_request_at=100.0,
    )
    decision, state = decide(config, burst, state, 100.0)
    assert decision.desired_replicas == 10
    assert decision.panicking
    assert decision.reason.startswith("panic: burst 10.0x target")

    calm = ScaleContext(
        replicas=10,
        stable_concurrency=2.0,
        panic_concurrency=2.0,
        in_flight=2,
        last_request_at=129.0,
    )
    for now in (101.0, 110.0, 129.9):
        decision, state = decide(config, calm, state, now)
        assert decision.desired_replicas == 10, now  # never down while panicking
        assert decision.panicking

    decision, state = decide(config, calm, state, 130.0)
    assert not decision.panicking
    assert state.panic_since is None
    assert decision.desired_replicas == 5  # stable wants 2; halving is the fastest way down


def test_panic_never_lowers_its_own_peak() -> None:
    config = ScaleConfig(target_concurrency=1, max_replicas=20)
    state = PolicyState()
    decision, state = decide(config, ScaleContext(replicas=2, panic_concurrency=16.0), state, 0.0)
    assert decision.desired_replicas == 16
    # The backend only managed 8 so far and the burst shrank: keep asking for the peak.
    smaller = ScaleContext(replicas=8, panic_concurrency=17.0, stable_concurrency=3.0)
    decision, state = decide(config, smaller, state, 1.0)
    assert decision.desired_replicas == 17
    decision, state = decide(config, ScaleContext(replicas=8, panic_concurrency=4.0), state, 2.0)
    assert decision.desired_replicas == 17
    assert state.max_panic_replicas == 17


def test_renewed_burst_extends_panic() -> None:
    config = ScaleConfig(target_concurrency=1, max_replicas=20, stable_window=30.0)
    state = PolicyState()
    _, state = decide(config, ScaleContext(replicas=1, panic_concurrency=5.0), state, 0.0)
    _, state = decide(config, ScaleContext(replicas=5, panic_concurrency=12.0), state, 20.0)
    decision, state = decide(config, ScaleContext(replicas=12), state, 45.0)
    assert decision.panicking  # 25 s after the last burst, not 45 s after the first
    assert decision.desired_replicas == 12
    assert state.panic_since == 0.0


@pytest.mark.parametrize(
    ("ctx", "expected"),
    [
        (ScaleContext(replicas=2, stable_concurrency=100.0, panic_concurrency=3.0, in_flight=3), 4),
        (ScaleContext(replicas=0, stable_concurrency=9.0, queued_requests=9), 2),
        (ScaleContext(replicas=3, stable_concurrency=100.0, panic_concurrency=100.0), 6),
    ],
)
def test_scale_up_rate_limit(ctx: ScaleContext, expected: int) -> None:
    config = ScaleConfig(target_concurrency=1, max_replicas=100, max_scale_up_rate=2.0)
    decision, _ = decide(config, ctx, PolicyState(), 0.0)
    assert decision.desired_replicas == expected
    assert "rate limited" in decision.reason


def test_scale_down_rate_limit_halves_each_step() -> None:
    config = ScaleConfig(target_concurrency=1, max_replicas=16, max_scale_down_rate=2.0)
    replicas, state, seen = 16, PolicyState(), []
    for now in range(5):
        ctx = ScaleContext(
            replicas=replicas,
            stable_concurrency=1.0,
            panic_concurrency=1.0,
            in_flight=1,
            last_request_at=float(now),
        )
        decision, state = decide(config, ctx, state, float(now))
        replicas = decision.desired_replicas
        seen.append(replicas)
    assert seen == [8, 4, 2, 1, 1]
    assert state.last_scale_down_at == 3.0


def test_scale_down_delay_holds_then_releases() -> None:
    config = ScaleConfig(target_concurrency=1, max_replicas=8, scale_down_delay=10.0)
    low = ScaleContext(
        replicas=4,
        stable_concurrency=2.0,
        panic_concurrency=2.0,
        in_flight=2,
        last_request_at=100.0,
    )
    high = ScaleContext(
        replicas=4,
        stable_concurrency=4.0,
        panic_concurrency=4.0,
        in_flight=4,
        last_request_at=100.0,
    )
    state = PolicyState()
    decision, state = decide(config, low, state, 100.0)
    assert decision.desired_replicas == 4
    assert "held" in decision.reason
    decision, state = decide(config, high, state, 105.0)  # load came back: the clock restarts
    assert state.scale_down_wanted_since is None
    decision, state = decide(config, low, state, 106.0)
    decision, state = decide(config, low, state, 115.9)
    assert decision.desired_replicas == 4
    decision, state = decide(config, low, state, 116.0)
    assert decision.desired_replicas == 2


def test_bounds_always_win() -> None:
    config = ScaleConfig(min_replicas=1, max_replicas=3, target_concurrency=1)
    loads = (0.0, 0.5, 2.0, 7.0, 500.0)
    for replicas, stable, panic, waiting, last in itertools.product(
        (0, 1, 3, 9), loads, loads, (0, 5), (None, 0.0, 999.0)
    ):
        ctx = ScaleContext(
            replicas=replicas,
            stable_concurrency=stable,
            panic_concurrency=panic,
            queued_requests=waiting,
            last_request_at=last,
        )
        decision, _ = decide(config, ctx, PolicyState(), 1000.0)
        assert 1 <= decision.desired_replicas <= 3, ctx


def test_over_max_after_a_config_change_comes_down_to_max() -> None:
    config = ScaleConfig(target_concurrency=1, max_replicas=4)
    decision = _decide(
        config,
        replicas=10,
        stable_concurrency=10.0,
        panic_concurrency=10.0,
        in_flight=10,
        last_request_at=1000.0,
    )
    assert decision.desired_replicas == 4
    assert "max 4" in decision.reason


def test_state_is_not_mutated() -> None:
    state = PolicyState()
    _, new_state = decide(ScaleConfig(), ScaleContext(replicas=1, panic_concurrency=50.0), state, 0)
    assert state == PolicyState()
    assert new_state.panicking


# --- configuration -----------------------------------------------------------------------------


def test_defaults_are_sane() -> None:
    config = ScaleConfig()
    assert config.stable_window == 30.0
    assert config.panic_window == pytest.approx(3.0)
    assert config.panic_threshold == 2.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"min_replicas": -1}, "min_replicas"),
        ({"max_replicas": 0}, "max_replicas"),
        ({"min_replicas": 5, "max_replicas": 4}, "min_replicas"),
        ({"target_concurrency": 0}, "target_concurrency"),
        ({"target_concurrency": float("nan")}, "target_concurrency"),
        ({"idle_timeout": 0}, "idle_timeout"),
        ({"panic_window_fraction": 1.5}, "panic_window_fraction"),
        ({"panic_threshold": 0.5}, "panic_threshold"),
        ({"max_scale_up_rate": 1.0}, "max_scale_up_rate"),
        ({"max_scale_down_rate": 0.5}, "max_scale_down_rate"),
        ({"scale_down_delay": -1}, "scale_down_delay"),
    ],
)
def test_invalid_config_names_the_field(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(InvalidSpec, match=field) as excinfo:
        ScaleConfig(**kwargs)  # type: ignore[arg-type]
    assert excinfo.value.fields["field"] == field


def test_negative_context_is_rejected() -> None:
    with pytest.raises(ValueError, match="queued_jobs"):
        ScaleContext(replicas=1, queued_jobs=-1)


def test_from_spec_takes_the_users_scale_section() -> None:
    from modelplane.spec.deployment import Scale

    config = ScaleConfig.from_spec(
        Scale(min=1, max=6, target_concurrency=8, idle_timeout=120), stable_window=60.0
    )
    assert (config.min_replicas, config.max_replicas) == (1, 6)
    assert (config.target_concurrency, config.idle_timeout) == (8, 120)
    assert config.stable_window == 60.0


def test_from_window_reads_both_windows() -> None:
    config = ScaleConfig(stable_window=30.0)
    window = ConcurrencyWindow(horizon=30.0)
    window.record(0.0, 0.0)
    window.record(27.0, 10.0)
    ctx = ScaleContext.from_window(window, config, 30.0, replicas=2)
    assert ctx.stable_concurrency == pytest.approx(1.0)
    assert ctx.panic_concurrency == pytest.approx(10.0)
    assert ctx.last_request_at == 27.0

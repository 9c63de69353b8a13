"""Skipping ticks is only a speed-up: the simulator that jumps over quiet and busy-but-unchanging
stretches gives exactly what the one that runs every autoscaler tick gives (``skip_idle=False``,
the implementation before any skipping), on random traces and on whole advice — every figure."""

from __future__ import annotations

import math
import random
import time
from dataclasses import fields
from typing import Any

import pytest

from modelplane.advisor import Costs, Need, Pattern, Question, ServiceTime, Settings, advise
from modelplane.advisor.advise import MAX_TICKS
from modelplane.advisor.simulator import DeploymentResult, SimDeployment, WorkBudget, simulate
from modelplane.resources.inventory import Inventory
from modelplane.spec import DeploymentSpec, ModelRef


def _same(a: Any) -> Any:
    """A comparable form: nan equals nan (``[nan] == [nan]`` is False for distinct nans)."""
    if isinstance(a, float) and math.isnan(a):
        return "nan"
    if isinstance(a, dict):
        return {k: _same(v) for k, v in a.items()}
    if isinstance(a, list | tuple):
        return [_same(v) for v in a]
    return a


def _as_dict(r: DeploymentResult) -> dict[str, Any]:
    return {f.name: _same(getattr(r, f.name)) for f in fields(r)}


def _random_case(seed: int) -> tuple[list[SimDeployment], Settings]:
    rng = random.Random(seed)
    deps = []
    for i in range(rng.choice((1, 1, 2))):
        lo = rng.choice((0, 0, 1))
        scale = {
            "min": lo,
            "max": rng.randint(max(lo, 1), 6),
            "target_concurrency": rng.choice((1, 1, 2, 4)),
            "idle_timeout": rng.choice((5, 30, 120)),
        }
        spec = DeploymentSpec.parse(
            {"name": f"d{i}", "model": {"path": "/m"}, "resources": {"cpu": 1}, "scale": scale}
        )
        # long services (minutes) make long busy stretches, short ones the usual traffic
        mean = rng.choice((0.05, 2.0, 45.0, 400.0))
        service = (
            ServiceTime(mean_seconds=mean, exponential=True)
            if rng.random() < 0.5
            else ServiceTime.of([mean * rng.uniform(0.5, 1.5) for _ in range(5)])
        )
        costs = Costs(rng.uniform(0, 2), rng.uniform(0, 0.4), service)
        span = rng.choice((600.0, 3600.0, 7200.0))
        n = rng.randint(1, 60)
        arrivals = sorted(rng.uniform(0, span) for _ in range(n))
        if rng.random() < 0.4:  # and a burst
            at = rng.uniform(0, span)
            arrivals = sorted(arrivals + [at + j * 0.05 for j in range(rng.randint(2, 20))])
        kind = rng.random()
        deps.append(
            SimDeployment(
                spec,
                arrivals,
                costs,
                jobs=kind < 0.2,
                fanout=rng.randint(1, 4) if 0.2 <= kind < 0.3 else None,
            )
        )
    settings = Settings(
        cpu_cores=rng.choice((None, None, 2.0)),
        inventory=Inventory(cpu=3, memory=2**40) if rng.random() < 0.3 else None,
        seed=seed,
    )
    return deps, settings


def _both(deps: list[SimDeployment], settings: Settings) -> tuple[list[Any], list[Any]]:
    fast = simulate(deps, settings)
    slow = simulate(deps, Settings(**{**settings.__dict__, "skip_idle": False}))
    return [_as_dict(r) for r in fast], [_as_dict(r) for r in slow]


@pytest.mark.parametrize("seed", range(40))
def test_random_traces_give_the_same_result_with_and_without_skipping(seed: int) -> None:
    deps, settings = _random_case(seed)
    fast, slow = _both(deps, settings)
    assert fast == slow


def test_a_long_busy_stretch_is_jumped_over() -> None:
    """One request served for an hour: every tick of it was run before; now a horizon's worth
    per event, and the result is the same."""
    spec = DeploymentSpec.parse(
        {"name": "m", "model": {"path": "/m"}, "scale": {"max": 2, "target_concurrency": 1}}
    )
    costs = Costs(0.0, 0.333, ServiceTime.of([3600.0]))
    deps = [SimDeployment(spec, [0.0, 1800.0, 9000.0], costs)]
    fast, slow = _both(deps, Settings())
    assert fast == slow
    from modelplane.advisor import simulator

    counted: list[int] = []
    real = simulator._Simulation.run

    def run(self: Any) -> Any:
        out = real(self)
        counted.append(self.ticks)
        return out

    simulator._Simulation.run = run  # type: ignore[method-assign]
    try:
        simulate(deps, Settings())
        simulate(deps, Settings(skip_idle=False))
    finally:
        simulator._Simulation.run = real  # type: ignore[method-assign]
    skipping, every = counted
    assert every > 40_000  # 2.5 busy hours on a 0.2 s grid
    assert skipping < 3_000


COSTS = Costs(0.5, 0.01, ServiceTime.of([0.04, 0.05, 0.05, 0.06]))
NEEDS = [
    (Need(requests_per_hour=0.5), Costs(5e-324, 0.333, ServiceTime.of([3600.0]))),
    (Need(requests_per_hour=30, pattern=Pattern.spaced), COSTS),
    (Need(requests_per_hour=2000, pattern=Pattern.bursty, latency_slo_ms=300), COSTS),
    (Need(requests_per_hour=5000, pattern=Pattern.steady, peak_concurrency=8), COSTS),
    (Need(requests_per_hour=40, latency_slo_ms=20_000), Costs(2.0, 0.2, ServiceTime.of([30, 90]))),
]


@pytest.mark.parametrize("index", range(len(NEEDS)))
def test_every_figure_of_the_advice_is_the_same_with_and_without_skipping(index: int) -> None:
    need, costs = NEEDS[index]
    q = Question(need, name="m", model=ModelRef(path="/m"))
    # a 1 s tick grid (as test_advise's) keeps the every-tick run quick; the logic is the same
    fast = advise(q, costs, Settings(autoscale_interval=1.0, max_ticks=MAX_TICKS)).to_dict()
    every = Settings(autoscale_interval=1.0, skip_idle=False, budget=WorkBudget(10**9))
    slow = advise(q, costs, every).to_dict()
    assert _same(fast) == _same(slow)


def test_the_fuzzers_hour_long_request_is_advised_in_well_under_a_second() -> None:
    """schemathesis's find (issue #12): a one-hour service at 0.5 requests an hour took ~11 s
    of CPU, every busy tick simulated."""
    need, costs = NEEDS[0]
    q = Question(need, name="m", model=ModelRef(path="/m"))
    t0 = time.process_time()
    advise(q, costs)
    assert time.process_time() - t0 < 1.0


def test_an_advice_over_its_work_budget_is_a_422_naming_the_limit() -> None:
    """Every simulation of one advice spends from one budget: a busy month-long trace of
    hour-long requests stops at the limit, a clear 422, rather than taking a minute of CPU."""
    from modelplane.advisor.advise import MAX_WORK
    from modelplane.errors import WorkLimit

    costs = Costs(1.0, 0.01, ServiceTime.of([3600.0]))
    trace = tuple(i * 40.0 for i in range(50_000))
    q = Question(Need(), name="m", model=ModelRef(path="/m"), trace=trace)
    t0 = time.process_time()
    with pytest.raises(WorkLimit, match=f"more than {MAX_WORK:,} units of simulated work") as e:
        advise(q, costs)
    assert e.value.status == 422
    assert time.process_time() - t0 < 10.0  # ~4.5 s on the shared 2-core machine; 39 s before
    # the budget is the caller's: a small one stops a small question too
    with pytest.raises(WorkLimit, match="more than 1,000 units"):
        advise(
            Question(Need(requests_per_hour=600), name="m", model=ModelRef(path="/m")),
            COSTS,
            Settings(budget=WorkBudget(1000)),
        )

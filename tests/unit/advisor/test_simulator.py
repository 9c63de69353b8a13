"""The simulator on its fake clock: known queueing results, cold starts, the autoscaler's own
decisions, placement, determinism, and a day in seconds."""

from __future__ import annotations

import math
import random
import statistics
import time

import pytest

from modelplane.advisor.costs import Costs, ServiceTime
from modelplane.advisor.simulator import Settings, SimDeployment, simulate
from modelplane.resources.inventory import Inventory
from modelplane.spec import DeploymentSpec


def spec(mode: str = "serverless", cpu: float = 1.0, **scale: object) -> DeploymentSpec:
    return DeploymentSpec.parse(
        {
            "name": "m",
            "model": {"path": "/m"},
            "mode": mode,
            "resources": {"cpu": cpu},
            "scale": scale,
        }
    )


def poisson(rate: float, n: int, seed: int = 7) -> list[float]:
    rng = random.Random(seed)
    t, out = 0.0, []
    for _ in range(n):
        t += rng.expovariate(rate)
        out.append(t)
    return out


def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits in M/M/c with offered load ``a`` = lambda/mu."""
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


EXP = ServiceTime(mean_seconds=0.1, exponential=True)


def test_mm1_sojourn_time_matches_the_formula() -> None:
    # One dedicated replica of a sync model is a FIFO single server: W = 1 / (mu - lambda).
    lam, mu = 7.0, 10.0
    arrivals = poisson(lam, 60_000)
    [r] = simulate(
        [SimDeployment(spec("dedicated", replicas=1), arrivals, Costs(0, 0, EXP))],
        Settings(autoscale_interval=5.0),
    )
    w = statistics.fmean(r.served)
    assert w == pytest.approx(1 / (mu - lam), rel=0.05)


@pytest.mark.parametrize(("c", "lam"), [(3, 24.0), (2, 14.0), (4, 34.0)])
def test_mmc_waiting_matches_erlang_c(c: int, lam: float) -> None:
    # A serverless deployment that wants to grow but whose node holds only c replicas: the pool
    # then keeps requests beyond one per replica in its own queue (the activator behaviour), so
    # the c replicas share one FIFO queue: M/M/c. Placement refuses the (c+1)-th replica.
    # Loads 0.8, 0.7 and 0.85 per replica.
    mu = 10.0
    a = lam / mu
    arrivals = poisson(lam, 50_000)
    node = Inventory(cpu=c, memory=2**40)
    sim = SimDeployment(
        spec(min=c, max=c + 1, target_concurrency=1, idle_timeout=3600),
        arrivals,
        Costs(0, 0, EXP),
    )
    [r] = simulate([sim], Settings(autoscale_interval=5.0, inventory=node))
    assert r.not_placed > 0  # the autoscaler did ask for more: the node said no
    waits = [lat for lat in r.served]
    pw = erlang_c(c, a)
    wq = pw / (c * mu - lam)
    mean_sojourn = wq + 1 / mu
    assert statistics.fmean(waits) == pytest.approx(mean_sojourn, rel=0.04)
    # share that waited: sojourn longer than any service alone would explain is not observable
    # directly, so check the mean wait itself against Erlang C's
    assert statistics.fmean(waits) - 1 / mu == pytest.approx(wq, rel=0.08)


def test_cold_start_from_zero_then_back_to_zero_after_idle_timeout() -> None:
    costs = Costs(load_seconds=0.5, start_overhead=0.01, service=ServiceTime(mean_seconds=0.05))
    [r] = simulate(
        [SimDeployment(spec(min=0, max=2, target_concurrency=1, idle_timeout=20), [100.0], costs)]
    )
    assert r.latencies == [pytest.approx(0.56)]
    assert r.cold == [True]
    assert r.cold_starts == 1
    # alive from 100 s to (last request seen by a tick) + idle timeout (+ at most one tick)
    assert 20 <= r.replica_seconds <= 20 + 0.56 + 0.45
    assert r.replicas_at(110) == 1 and r.replicas_at(r.until) == 0


def test_second_request_while_warm_meets_no_cold_start() -> None:
    costs = Costs(0.5, 0.01, ServiceTime(mean_seconds=0.05))
    [r] = simulate([SimDeployment(spec(idle_timeout=20), [10.0, 15.0, 100.0], costs)])
    assert r.cold == [True, False, True]
    assert r.latencies[1] == pytest.approx(0.05)
    assert r.cold_share == pytest.approx(2 / 3)


def test_a_burst_at_zero_spreads_over_the_replicas_it_causes() -> None:
    costs = Costs(0.5, 0.01, ServiceTime(mean_seconds=0.2))
    burst = [50.0 + i * 1e-3 for i in range(8)]
    [r] = simulate(
        [SimDeployment(spec(max=4, target_concurrency=1, idle_timeout=10), burst, costs)]
    )
    # the first request starts one replica at once; the panic window's average then grows
    # tick by tick and panic mode adds the rest, capped at max
    assert r.starts == 4
    assert r.steps[1] == (50.0, 1)
    assert all(r.cold)
    # the pool holds the rest back for the new replicas rather than piling them on the first:
    # one replica alone would answer the last after 0.51 + 8 * 0.2 s
    assert max(r.served) < 0.51 + 8 * 0.2 - 0.4


def test_placement_caps_replicas_at_what_the_node_holds() -> None:
    costs = Costs(0.1, 0.01, ServiceTime(mean_seconds=0.5))
    burst = [10.0 + i * 1e-3 for i in range(20)]
    node = Inventory(cpu=2, memory=2**40)
    [r] = simulate(
        [SimDeployment(spec(max=8, target_concurrency=1), burst, costs)],
        Settings(inventory=node),
    )
    assert max(n for _, n in r.steps) == 2
    assert r.not_placed > 0


def test_deployments_share_the_node() -> None:
    costs = Costs(0.1, 0.01, ServiceTime(mean_seconds=0.5))
    node = Inventory(cpu=3, memory=2**40)
    a = SimDeployment(spec("dedicated", replicas=2), [1.0], costs)
    b = SimDeployment(spec(max=4, target_concurrency=1), [10.0 + i * 1e-3 for i in range(6)], costs)
    ra, rb = simulate([a, b], Settings(inventory=node))
    assert max(n for _, n in rb.steps) == 1  # two of the three cores are the dedicated one's
    assert ra.replica_seconds == pytest.approx(2 * ra.until)


def test_dedicated_replicas_are_up_from_the_start_and_never_cold() -> None:
    costs = Costs(2.0, 0.01, ServiceTime(mean_seconds=0.05))
    [r] = simulate(
        [SimDeployment(spec("dedicated", replicas=2), [0.5, 1.0, 3000.0], costs)],
        Settings(until=3600),
    )
    assert r.cold == [False, False, False]
    assert r.replica_seconds == pytest.approx(2 * 3600)


def test_jobs_go_through_the_runner_and_wake_a_deployment_at_zero() -> None:
    costs = Costs(0.5, 0.01, ServiceTime(mean_seconds=0.1))
    jobs = [5.0 + i * 1e-3 for i in range(10)]
    [r] = simulate(
        [SimDeployment(spec(max=2, target_concurrency=1, idle_timeout=5), jobs, costs, jobs=True)]
    )
    assert len(r.served) == 10
    assert r.starts >= 1 and r.replicas_at(r.until) == 0


def test_skipping_idle_ticks_changes_nothing() -> None:
    costs = Costs(0.3, 0.01, ServiceTime(samples=(0.02, 0.05, 0.2)))
    rng = random.Random(3)
    arrivals = sorted(rng.uniform(0, 3000) for _ in range(200))
    arrivals += [3000 + i * 0.01 for i in range(30)]  # and a burst
    sims = [SimDeployment(spec(max=4, target_concurrency=1, idle_timeout=45), arrivals, costs)]
    fast = simulate(sims, Settings(skip_idle=True))[0]
    slow = simulate(sims, Settings(skip_idle=False))[0]
    assert fast.latencies == slow.latencies
    assert fast.cold == slow.cold
    assert fast.steps == slow.steps
    assert fast.replica_seconds == pytest.approx(slow.replica_seconds)
    # several deployments competing for a small node
    node = Settings(inventory=Inventory(cpu=3, memory=2**40), skip_idle=True)
    many = [
        SimDeployment(
            DeploymentSpec.parse(
                {
                    "name": f"d{i}",
                    "model": {"path": "/m"},
                    "scale": {"max": 3, "target_concurrency": 1, "idle_timeout": 20},
                }
            ),
            sorted(random.Random(i).uniform(0, 600) for _ in range(60)),
            costs,
        )
        for i in range(3)
    ]
    fast_many = simulate(many, node)
    slow_many = simulate(many, Settings(inventory=node.inventory, skip_idle=False))
    for f, s in zip(fast_many, slow_many, strict=True):
        assert f.latencies == s.latencies and f.steps == s.steps and f.not_placed == s.not_placed


def test_same_inputs_same_result() -> None:
    costs = Costs(0.3, 0.01, ServiceTime(mean_seconds=0.05, exponential=True))
    sims = [SimDeployment(spec(max=4), poisson(3.0, 2000), costs)]
    one, two = simulate(sims, Settings(seed=5))[0], simulate(sims, Settings(seed=5))[0]
    assert one.latencies == two.latencies and one.steps == two.steps


def test_a_day_of_spaced_traffic_simulates_in_seconds() -> None:
    costs = Costs(0.5, 0.01, ServiceTime(mean_seconds=0.05))
    day = [i * 600.0 + 1 for i in range(144)]
    t0 = time.perf_counter()
    [r] = simulate([SimDeployment(spec(idle_timeout=60), day, costs)], Settings(until=86_400))
    assert time.perf_counter() - t0 < 5.0
    assert r.cold_share == 1.0  # ten minutes apart, one-minute idle timeout: every one is cold
    assert r.replica_seconds == pytest.approx(144 * (0.56 + 60), rel=0.01)


def test_timeline_reports_replicas_and_latency_per_bucket() -> None:
    costs = Costs(0.5, 0.01, ServiceTime(mean_seconds=0.05))
    [r] = simulate([SimDeployment(spec(idle_timeout=30), [10.0, 11.0], costs)], Settings(until=100))
    tl = r.timeline(buckets=10)
    assert tl["t"][:2] == [0.0, 10.0]
    assert tl["replicas_peak"][1] == 1 and tl["replicas_peak"][9] == 0
    assert tl["p99_ms"][1] == pytest.approx(560.0)
    assert math.isnan(tl["p50_ms"][5])


def test_a_simulation_over_its_tick_budget_is_refused() -> None:
    from modelplane.errors import InvalidInput

    costs = Costs(0.1, 0.01, ServiceTime(mean_seconds=0.05))
    busy = [t * 0.1 for t in range(3000)]
    with pytest.raises(InvalidInput, match="autoscaler ticks"):
        simulate([SimDeployment(spec(), busy, costs)], Settings(max_ticks=1000))


def test_each_start_draws_one_of_the_measured_start_up_times() -> None:
    costs = Costs(
        0.5, 0.0, ServiceTime(mean_seconds=0.01), startup_samples=(0.2, 0.9), stop_seconds=0.0
    )
    spaced = [i * 100.0 for i in range(1, 41)]
    [r] = simulate([SimDeployment(spec(idle_timeout=10), spaced, costs)])
    assert set(round(x, 6) for x in r.latencies) == {0.21, 0.91}


def test_a_batch_run_keeps_its_fanout_in_flight() -> None:
    # one item in flight at a time: four replicas cannot help, the run is serial
    costs = Costs(0.5, 0.0, ServiceTime(mean_seconds=0.1))
    items = [0.0] * 20
    serial = SimDeployment(
        spec("dedicated", replicas=4), items, costs, fanout=1, created_at_start=True
    )
    wide = SimDeployment(
        spec("dedicated", replicas=4), items, costs, fanout=64, created_at_start=True
    )
    one, four = simulate([serial]), simulate([wide])
    assert one[0].finished_at == pytest.approx(0.5 + 20 * 0.1)
    assert four[0].finished_at == pytest.approx(0.5 + 5 * 0.1)


def test_a_deployment_made_for_a_run_and_deleted_after_it_holds_its_replicas_only_meanwhile() -> (
    None
):
    costs = Costs(0.5, 0.0, ServiceTime(mean_seconds=0.1), stop_seconds=0.0)
    sim = SimDeployment(
        spec("dedicated", replicas=2),
        [0.0] * 10,
        costs,
        fanout=8,
        created_at_start=True,
        delete_when_done=True,
    )
    [r] = simulate([sim], Settings(until=3600))
    assert r.finished_at == pytest.approx(0.5 + 5 * 0.1)
    # the start-up is paid (created at 0) and nothing after the last answer
    assert r.replica_seconds == pytest.approx(2 * r.finished_at)
    assert r.cold_starts == 2 and r.replicas_at(r.finished_at + 1) == 0
    # the items waited for the replicas that were starting
    assert all(r.cold)


def test_the_platform_hop_adds_to_every_answer_without_holding_a_replica() -> None:
    costs = Costs(0, 0, ServiceTime(mean_seconds=0.1), hop=ServiceTime(mean_seconds=0.02))
    # two requests 50 ms apart on one replica: the second waits 50 ms for the first's service,
    # not for its hop
    [r] = simulate([SimDeployment(spec("dedicated", replicas=1), [0.0, 0.05], costs)])
    assert r.latencies == pytest.approx([0.12, 0.17])


def test_replicas_starting_together_share_the_nodes_cores() -> None:
    costs = Costs(0.5, 0.0, ServiceTime(mean_seconds=0.01))
    burst = [0.0] * 4  # four replicas at once from zero (target 1, max 4)
    dep = SimDeployment(spec(min=0, max=4, target_concurrency=1, idle_timeout=5), burst, costs)
    [alone] = simulate([dep])
    [shared] = simulate([dep], Settings(cpu_cores=2))
    # the autoscaler, poked by the queued burst, asks for all four at once
    assert alone.starts == shared.starts == 4
    # without sharing each is answered one start-up and one service after the burst
    assert alone.latencies == pytest.approx([0.51] * 4)
    # four loads, then four services, on two cores: each at half speed
    assert shared.latencies == pytest.approx([1.02] * 4)


def test_other_work_on_the_node_takes_its_share_of_the_cores() -> None:
    # the start-up and service were measured alone among 4 runnable processes of other work:
    # one replica then had 2 / 5 of a core, four together each get 2 / 8, 0.625 of that speed
    costs = Costs(0.5, 0.0, ServiceTime(mean_seconds=0.01))
    dep = SimDeployment(spec(min=0, max=4, target_concurrency=1, idle_timeout=5), [0.0] * 4, costs)
    [shared] = simulate([dep], Settings(cpu_cores=2, other_load=4))
    assert shared.latencies == pytest.approx([0.51 / 0.625] * 4)
    # one replica alone runs as measured, whatever the other work
    one = SimDeployment(spec(min=0, max=1, target_concurrency=1, idle_timeout=5), [0.0], costs)
    [alone] = simulate([one], Settings(cpu_cores=2, other_load=4))
    assert alone.latencies == pytest.approx([0.51])


def test_each_answer_is_split_into_wait_service_and_hop() -> None:
    costs = Costs(0, 0, ServiceTime(mean_seconds=0.1), hop=ServiceTime(mean_seconds=0.02))
    [r] = simulate([SimDeployment(spec("dedicated", replicas=1), [0.0, 0.05], costs)])
    # the second waits 50 ms behind the first, then is served for 100 ms
    assert r.began == pytest.approx([0.0, 0.1])
    assert r.hops == pytest.approx([0.02, 0.02])
    waits = [b - a for a, b in zip(r.arrivals, r.began, strict=True)]
    services = [lat - h - w for lat, h, w in zip(r.latencies, r.hops, waits, strict=True)]
    assert waits == pytest.approx([0.0, 0.05])
    assert services == pytest.approx([0.1, 0.1])
    # the dedicated replica was ready before the traffic: asked for one start-up earlier
    assert r.replica_span == [(0.0, 0.0), (0.0, 0.0)]


def test_processor_sharing_on_one_core_matches_its_arithmetic() -> None:
    # two dedicated replicas on one core, one request each at time 0: both at half speed,
    # both done at 2 x service
    costs = Costs(0, 0, ServiceTime(mean_seconds=0.1))
    [r] = simulate(
        [SimDeployment(spec("dedicated", replicas=2), [0.0, 0.0], costs)],
        Settings(cpu_cores=1),
    )
    assert r.latencies == pytest.approx([0.2, 0.2])
    # a third arriving at 0.05 on a third replica: 1/3 speed from then on
    [r] = simulate(
        [SimDeployment(spec("dedicated", replicas=3), [0.0, 0.0, 0.05], costs)],
        Settings(cpu_cores=1),
    )
    # first two: 0.025 done by 0.05, 0.075 left at 1/3 speed -> 0.05 + 0.225 = 0.275
    assert r.latencies[:2] == pytest.approx([0.275, 0.275])
    # third: 0.075 done by 0.275 (1/3 of 0.225), then alone: 0.025 more -> ends 0.3
    assert r.latencies[2] == pytest.approx(0.3 - 0.05)


def test_cold_from_zero_is_what_arrived_with_no_replica_ready() -> None:
    costs = Costs(0.5, 0.0, ServiceTime(mean_seconds=0.05))
    dep = SimDeployment(
        spec(min=0, max=1, target_concurrency=1, idle_timeout=2), [1.0, 1.2, 3.0, 30.0], costs
    )
    [r] = simulate([dep], Settings(stable_window=6))
    assert r.cold_from_zero == [True, True, False, True]
    assert r.cold_from_zero_share == 0.75

"""A discrete-event simulation of deployments on one node, over a fake clock.

Nothing here is a model *of* the platform's decisions: every decision is made by the platform's
own pure functions, called with the simulated state —

- scaling: :class:`modelplane.autoscale.tracker.Tracker` (the autoscale loop's per-deployment
  step: window aggregation, then :func:`modelplane.autoscale.policy.decide`), on the same tick
  grid as the loop and poked the way the gateway pokes it when a request has to wait;
- replica choice and the per-replica limit while a deployment can grow:
  :func:`modelplane.gateway.balance.least_loaded` and
  :func:`~modelplane.gateway.balance.per_replica_limit`; which replicas go on a scale-down:
  :func:`~modelplane.gateway.balance.scale_down_order`;
- placement: :func:`modelplane.resources.placement.place` over the node's inventory.

What is simulated is only what the platform does not decide: time passing. A replica is ready
``costs.startup`` after it is asked for; a sync model serves its requests one at a time, in
order (as :class:`modelplane.worker.server.Predictor` does), each taking a service time drawn
from the measured ones; a stopped replica finishes what it holds, then exits. Each answer also
pays the measured platform hop (``costs.hop``), which holds no replica.

With ``Settings.cpu_cores`` the node's cores are shared: a start-up or a request's service is
work measured alone, and while more replicas are loading or serving than there are cores, each
runs at ``cores / busy`` of its speed (processor sharing). Four replicas that start together on
two cores each take twice their measured start-up; without it, starts and services never slow
each other. ``Settings.other_load`` adds the other work of a shared node: that many runnable
processes that are not ours take their fair share too, so ``n`` busy replicas each get
``min(1, cores / (other + n))`` of a core against ``min(1, cores / (other + 1))`` when the costs
were measured (alone among the same other work).

Deterministic: one seeded random generator per deployment, ties broken by insertion order.
Idle stretches are skipped without changing the result: while a deployment is quiet (nothing in
flight, queued or starting, and the window's last sample 0), a tick records a zero, which adds
nothing to the window, so its inputs differ only in ``now``; with inputs that only age, the
policy's answer changes at a few instants and stays changed, so the next tick that could decide
something else is found with :meth:`Tracker.peek` (a binary search over the tick grid) and the
ticks between are not run. Busy stretches are skipped too: once the autoscaler's counts have
held for a whole window and its decision (asked with the window's averages nudged either way)
can neither change the count nor the policy state, a deployment sleeps until its next event;
then only the ticks within a window of it are run (the window keeps no older samples), so the
tracker ends as if every tick had run. A count the node could not place is retried at every
tick, never skipped. The cost of a simulation is then bounded by its events, not by simulated
time. ``test_skipping.py`` checks against every tick run (``skip_idle=False``) on random traces
and whole advice.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from modelplane.advisor.costs import Costs
from modelplane.autoscale.policy import ScaleConfig, decide
from modelplane.autoscale.tracker import Tracker
from modelplane.errors import InvalidInput, WorkLimit
from modelplane.gateway.balance import least_loaded, per_replica_limit, scale_down_order
from modelplane.resources.amounts import Usage
from modelplane.resources.inventory import Gpu, Inventory
from modelplane.resources.placement import Grant, Refusal, place
from modelplane.spec import DeploymentSpec, Mode

__all__ = ["DeploymentResult", "Settings", "SimDeployment", "WorkBudget", "simulate"]

_ARRIVAL, _READY, _DONE, _EXIT, _TICK = range(5)


@dataclass(frozen=True)
class SimDeployment:
    """One deployment to simulate: its spec, its traffic and its model's costs.

    ``arrivals``: request times in seconds from the start, sorted. ``jobs``: the requests are
    async jobs (they queue in the job table and the job runner feeds the pool) rather than
    synchronous predictions. ``fanout``: the requests are the items of one batch run, sent
    straight to the pool with at most ``fanout`` in flight (as
    :class:`modelplane.jobs.batches.BatchRunner` does).

    ``created_at_start``: the deployment is made when the traffic begins, so its first replicas
    start at time 0 (their start-up counted) rather than being ready by then.
    ``delete_when_done``: the deployment is removed once every request has been answered (a
    one-off run); its replicas stop then.
    """

    spec: DeploymentSpec
    arrivals: Sequence[float]
    costs: Costs
    jobs: bool = False
    owner: str = "sim"
    fanout: int | None = None
    created_at_start: bool = False
    delete_when_done: bool = False


class WorkBudget:
    """The simulated work one caller (one advise request) may spend over all its simulations:
    every event processed counts one, every autoscaler tick run (a window update and a
    decision, a few times an event's cost) counts ``TICK_COST``. Spending past ``limit``
    raises :class:`~modelplane.errors.WorkLimit` (422), which names the limit."""

    TICK_COST = 4

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit

    def spend(self, units: int) -> None:
        self.left -= units
        if self.left < 0:
            raise WorkLimit(
                f"this question needs more than {self.limit:,} units of simulated work (events, "
                f"and autoscaler ticks at {self.TICK_COST} each), the limit of one request",
                hint="give fewer requests (a shorter trace, or a rate and a pattern: a "
                "representative stretch is simulated) or shorter service times",
            )


@dataclass(frozen=True)
class Settings:
    """The platform's settings that shape the outcome (the same names as ``modelplane up``'s).

    ``until``: where the simulated time stops (default: the last arrival plus enough time for
    every deployment to drain and scale back down). ``inventory``: the node; default is one
    large enough never to refuse a replica.
    """

    autoscale_interval: float = 0.2
    stable_window: float = 30.0
    queue_limit: int = 1000
    queue_timeout: float = 60.0
    until: float | None = None
    seed: int = 0
    inventory: Inventory | None = None
    cpu_cores: float | None = None
    """The node's cores, shared by the replicas' start-ups and services (None: not shared)."""
    other_load: float = 0.0
    """With ``cpu_cores``: runnable processes of other work on the node that share its cores
    with the replicas (see :func:`modelplane.advisor.measure.other_load`)."""
    max_ticks: int | None = None
    """Refuse (``InvalidInput``) a simulation that needs more autoscaler ticks than this."""
    budget: WorkBudget | None = field(default=None, compare=False)
    """Work shared with other simulations of the same request (None: unbounded)."""
    skip_idle: bool = True
    """Skip the ticks of quiet and of busy-but-unchanging stretches (same result, fewer ticks);
    False runs every tick."""


@dataclass
class DeploymentResult:
    """What happened to one simulated deployment.

    Per request (in arrival order): ``latencies`` in seconds (``nan``: refused or unfinished),
    ``cold``: it waited for a replica that was still starting; ``cold_from_zero``: it arrived
    while the deployment had no ready replica (what the platform records as a cold start).
    ``steps``: ``(time, replicas)``
    each time the number of replica processes (starting, ready or stopping) changed.
    ``finished_at``: when the last request was answered (nan if none was).
    ``began``: when each request's service began on a replica (nan: never), ``hops``: the
    platform hop added to its answer, ``replica_span``: ``(asked for, ready)`` of the replica
    that served it — a request's latency is ``began - arrival`` (waiting: for a replica to
    start, or behind other requests) + service (``latency - hop - wait``) + ``hop``.
    """

    name: str
    until: float
    latencies: list[float]
    cold: list[bool]
    arrivals: Sequence[float]
    cold_from_zero: list[bool] = field(default_factory=list)
    replica_seconds: float = 0.0
    gpu_seconds: float = 0.0
    starts: int = 0
    cold_starts: int = 0
    refused: int = 0
    not_placed: int = 0
    finished_at: float = math.nan
    steps: list[tuple[float, int]] = field(default_factory=list)
    began: list[float] = field(default_factory=list)
    hops: list[float] = field(default_factory=list)
    replica_span: list[tuple[float, float]] = field(default_factory=list)

    @property
    def served(self) -> list[float]:
        return [x for x in self.latencies if not math.isnan(x)]

    def quantile(self, q: float) -> float:
        """The ``q`` quantile of the served requests' latency (nearest rank); nan if none."""
        ordered = sorted(self.served)
        if not ordered:
            return math.nan
        return ordered[min(max(math.ceil(q * len(ordered)) - 1, 0), len(ordered) - 1)]

    @property
    def cold_share(self) -> float:
        n = len(self.cold)
        return sum(self.cold) / n if n else 0.0

    @property
    def cold_from_zero_share(self) -> float:
        n = len(self.cold_from_zero)
        return sum(self.cold_from_zero) / n if n else 0.0

    def replicas_at(self, t: float) -> int:
        count = 0
        for at, n in self.steps:
            if at > t:
                break
            count = n
        return count

    def timeline(self, buckets: int = 96) -> dict[str, list[float]]:
        """Per time bucket: mean and peak replicas, p50 and p99 latency (ms) of the requests
        that arrived in it (nan where none did), requests per second."""
        width = self.until / buckets if self.until > 0 else 1.0
        starts = [i * width for i in range(buckets)]
        mean_r, peak_r = _step_stats(self.steps, starts, width)
        per: list[list[float]] = [[] for _ in range(buckets)]
        counts = [0] * buckets
        for t, lat in zip(self.arrivals, self.latencies, strict=True):
            b = min(int(t / width), buckets - 1) if width > 0 else 0
            counts[b] += 1
            if not math.isnan(lat):
                per[b].append(lat)
        p50 = [_nearest(sorted(v), 0.5) * 1000 for v in per]
        p99 = [_nearest(sorted(v), 0.99) * 1000 for v in per]
        return {
            "t": [round(s, 3) for s in starts],
            "replicas_mean": [round(x, 4) for x in mean_r],
            "replicas_peak": peak_r,
            "p50_ms": [round(x, 3) for x in p50],
            "p99_ms": [round(x, 3) for x in p99],
            "requests_per_second": [round(c / width, 4) for c in counts],
        }


def _nearest(ordered: list[float], q: float) -> float:
    if not ordered:
        return math.nan
    return ordered[min(max(math.ceil(q * len(ordered)) - 1, 0), len(ordered) - 1)]


def _step_stats(
    steps: list[tuple[float, int]], starts: list[float], width: float
) -> tuple[list[float], list[float]]:
    means: list[float] = []
    peaks: list[float] = []
    i, current = 0, 0
    for s in starts:
        end = s + width
        while i < len(steps) and steps[i][0] <= s:
            current = steps[i][1]
            i += 1
        area, at, peak = 0.0, s, float(current)
        j = i
        while j < len(steps) and steps[j][0] < end:
            area += current * (steps[j][0] - at)
            at, current = steps[j][0], steps[j][1]
            peak = max(peak, current)
            j += 1
        area += current * (end - at)
        i = j
        means.append(area / width if width > 0 else float(current))
        peaks.append(peak)
    return means, peaks


# -- the simulated parts ---------------------------------------------------------------------


class _Request:
    __slots__ = ("arrival", "index")

    def __init__(self, index: int, arrival: float) -> None:
        self.index = index
        self.arrival = arrival


class _Replica:
    """A replica process as the gateway and the reconciler see it."""

    __slots__ = (
        "dep",
        "exiting",
        "grant",
        "pending",
        "ready_at",
        "started_at",
        "state",
        "version",
        "work_kind",
        "work_left",
    )

    def __init__(self, dep: _Dep, started_at: float, grant: Grant | None) -> None:
        self.dep = dep
        self.started_at = started_at
        self.ready_at = math.inf
        self.state = "starting"  # starting | ready | stopping
        self.pending: deque[_Request] = deque()
        self.grant = grant
        self.exiting = False
        self.version = 0  # of its scheduled work event; a stale one is dropped
        self.work_kind = _DONE
        self.work_left = 0.0

    @property
    def in_flight(self) -> int:
        return len(self.pending)

    @property
    def ready(self) -> bool:
        return self.state == "ready"


class _Dep:
    """One deployment's runtime: the reconciler's replicas, the gateway's pool, the autoscaler's
    tracker and, for jobs, the job runner's backlog."""

    def __init__(self, sim: SimDeployment, settings: Settings, seed: int) -> None:
        self.sim = sim
        self.spec = sim.spec
        self.name = sim.spec.name
        self.costs = sim.costs
        self.serverless = sim.spec.mode is Mode.serverless
        self.rng = random.Random(seed)
        self.hop_rng = random.Random(seed + 1)  # its own stream: service draws stay as they were
        self.replicas: list[_Replica] = []
        self.ready: list[_Replica] = []
        self.queue: deque[_Request] = deque()
        self.limit = 0
        self.requests = 0
        self.backlog: deque[_Request] = deque()
        self.jobs_running = 0
        self.tracker: Tracker | None = None
        if self.serverless:
            config = ScaleConfig.from_spec(sim.spec.scale, stable_window=settings.stable_window)
            self.tracker = Tracker(config, created_at=0.0)
        self.tick_at: int | None = None  # the scheduled tick's index; None: parked
        self.asleep: int | None = None  # busy and unchanging since this tick: ticks not run
        self.inputs: tuple[int, ...] = ()  # the autoscaler's last observed counts
        self.inputs_since = 0.0  # since when they have been those
        self.next_arrival = 0
        self.fed = sim.jobs or sim.fanout is not None  # a runner feeds the pool from a backlog
        self.unanswered = len(sim.arrivals)
        self.deleted = False
        r = sim.spec.resources
        self.usage = Usage(r.cpu, r.memory, r.gpu)
        n = len(sim.arrivals)
        self.result = DeploymentResult(
            self.name,
            0.0,
            [math.nan] * n,
            [False] * n,
            sim.arrivals,
            cold_from_zero=[False] * n,
            steps=[(0.0, 0)],
            began=[math.nan] * n,
            hops=[0.0] * n,
            replica_span=[(math.nan, math.nan)] * n,
        )

    def live(self) -> list[_Replica]:
        return [r for r in self.replicas if r.state != "stopping"]

    def desired(self) -> int:
        if self.deleted:
            return 0
        if not self.serverless:
            return self.spec.scale.replicas
        assert self.tracker is not None
        return self.tracker.desired

    def quiet(self) -> bool:
        return (
            not self.queue
            and not self.backlog
            and self.jobs_running == 0
            and all(r.state == "ready" and not r.pending for r in self.replicas)
        )


class _Simulation:
    def __init__(self, deployments: Sequence[SimDeployment], settings: Settings) -> None:
        self.settings = settings
        self.deps = [
            _Dep(d, settings, settings.seed * 1_000_003 + i) for i, d in enumerate(deployments)
        ]
        self.inventory = settings.inventory or Inventory(
            cpu=1e12, memory=2**62, gpus=tuple(Gpu(i) for i in range(512)), source="simulated"
        )
        self.grants: dict[int, Grant] = {}
        self.events: list[tuple[float, int, int, Any, float]] = []
        self.seq = 0
        self.now = -math.inf  # when the event being processed happened
        last = max((d.arrivals[-1] for d in deployments if d.arrivals), default=0.0)
        tail = max(
            (d.spec.scale.idle_timeout + 2 * settings.stable_window + 60.0 for d in deployments),
            default=60.0,
        )
        self.until = settings.until if settings.until is not None else last + tail
        self.interval = settings.autoscale_interval
        self.ticks = 0
        self.cores = settings.cpu_cores
        self.busy: dict[_Replica, None] = {}  # replicas loading or serving (an ordered set)
        self.rate = 1.0
        self.rate_since = 0.0

    # -- events ------------------------------------------------------------------------------
    def at(self, t: float, kind: int, obj: Any) -> None:
        self.seq += 1
        heapq.heappush(self.events, (t, self.seq, kind, obj, self.now))

    def run(self) -> list[DeploymentResult]:
        for dep in self.deps:
            if dep.sim.arrivals:
                self.at(dep.sim.arrivals[0], _ARRIVAL, dep)
            self._prestart(dep)
            if dep.serverless:
                self._schedule_tick(dep, 0)
        until = self.until
        events = self.events
        budget = self.settings.budget
        while events and events[0][0] <= until:
            now, _, kind, obj, pushed = heapq.heappop(events)
            self.now = now
            if budget is not None:
                budget.spend(1)
            if kind in (_DONE, _READY):
                replica, version = obj
                if version != replica.version:
                    continue  # rescheduled: the CPU share changed
                if replica.dep.asleep is not None:
                    self._wake(replica.dep, now, pushed)
                self._finish_work(replica, now)
                if kind == _DONE:
                    self._done(replica, now)
                else:
                    self._ready(replica, now)
            elif kind == _ARRIVAL:
                if obj.asleep is not None:
                    self._wake(obj, now, pushed)
                self._arrival(obj, now)
            elif kind == _TICK:
                self._tick(obj, now)
            else:
                if obj.dep.asleep is not None:
                    self._wake(obj.dep, now, pushed)
                self._exit(obj, now)
        results = []
        for dep in self.deps:
            for r in dep.replicas:
                self._account(dep, r, until)
            dep.result.until = until
            results.append(dep.result)
        return results

    # -- the gateway -------------------------------------------------------------------------
    def _arrival(self, dep: _Dep, now: float) -> None:
        index = dep.next_arrival
        dep.next_arrival += 1
        if dep.next_arrival < len(dep.sim.arrivals):
            self.at(dep.sim.arrivals[dep.next_arrival], _ARRIVAL, dep)
        req = _Request(index, now)
        dep.result.cold_from_zero[index] = not dep.ready
        if dep.serverless and dep.tick_at is None:
            # a parked deployment is ticked again on the loop's grid
            self._schedule_tick(dep, math.floor(now / self.interval) + 1)
        if dep.fed:
            dep.backlog.append(req)
            self._runner_pass(dep, now)
        else:
            self._submit(dep, req, now)

    def _submit(self, dep: _Dep, req: _Request, now: float) -> None:
        """:meth:`modelplane.gateway.pool.DeploymentPool.submit`."""
        dep.requests += 1
        ready = dep.ready
        if ready:
            replica = ready[0] if len(ready) == 1 else least_loaded(ready)
            if not dep.limit or replica.in_flight < dep.limit:
                self._send(replica, req, now)
                return
        if len(dep.queue) >= self.settings.queue_limit:
            dep.result.refused += 1
            return
        dep.queue.append(req)
        if dep.serverless:  # the pool pokes the autoscaler, which decides at once
            self._autoscale(dep, now)

    def _send(self, replica: _Replica, req: _Request, now: float) -> None:
        replica.pending.append(req)
        if len(replica.pending) == 1:
            self._serve(replica, now)

    def _serve(self, replica: _Replica, now: float) -> None:
        """The request at the head of the replica's line begins its service."""
        dep = replica.dep
        dep.result.began[replica.pending[0].index] = now
        self._work(replica, _DONE, dep.costs.service.draw(dep.rng), now)

    def _drain(self, dep: _Dep, now: float) -> None:
        timeout = self.settings.queue_timeout
        while dep.queue and dep.ready:
            replica = least_loaded(dep.ready)
            if dep.limit and replica.in_flight >= dep.limit:
                break
            req = dep.queue.popleft()
            if now - req.arrival > timeout:
                dep.result.refused += 1
                continue
            self._send(replica, req, now)

    def _done(self, replica: _Replica, now: float) -> None:
        dep = replica.dep
        req = replica.pending.popleft()
        hop = dep.costs.hop
        extra = hop.draw(dep.hop_rng) if hop is not None else 0.0
        dep.result.latencies[req.index] = now - req.arrival + extra
        dep.result.hops[req.index] = extra
        dep.result.replica_span[req.index] = (replica.started_at, replica.ready_at)
        dep.result.cold[req.index] = replica.ready_at > req.arrival
        dep.unanswered -= 1
        if dep.unanswered == 0:
            dep.result.finished_at = now + extra
        if replica.pending:
            self._serve(replica, now)
        elif replica.state == "stopping" and not replica.exiting:
            replica.exiting = True
            self.at(now + dep.costs.stop_seconds, _EXIT, replica)
        if dep.fed:
            dep.jobs_running -= 1
            self._runner_pass(dep, now)
        self._drain(dep, now)
        if dep.unanswered == 0 and dep.sim.delete_when_done and not dep.deleted:
            dep.deleted = True
            for r in list(dep.live()):
                self._stop(r, now)
            self._publish(dep, now)

    # -- the job runner ----------------------------------------------------------------------
    def _runner_pass(self, dep: _Dep, now: float) -> None:
        """:meth:`modelplane.jobs.runner.JobRunner._pass` for one deployment: claim no more
        than the ready replicas take at their target concurrency (at least one). A batch run
        (``fanout``) keeps its fixed number in flight, whatever is ready."""
        if dep.sim.fanout is not None:
            room = dep.sim.fanout - dep.jobs_running
        else:
            per_replica = max(1, math.ceil(dep.spec.scale.target_concurrency))
            room = max(1, len(dep.ready)) * per_replica - dep.jobs_running
        while room > 0 and dep.backlog:
            room -= 1
            dep.jobs_running += 1
            self._submit(dep, dep.backlog.popleft(), now)

    # -- the autoscaler ----------------------------------------------------------------------
    def _schedule_tick(self, dep: _Dep, k: int) -> None:
        """Tick ``k`` of the loop's grid, at ``k * interval`` (integers: no drift)."""
        dep.tick_at = k
        self.at(k * self.interval, _TICK, (dep, k))

    def _tick(self, item: tuple[_Dep, int], now: float) -> None:
        dep, k = item
        if dep.tick_at != k:
            return  # superseded
        self._count_tick()
        self._autoscale(dep, now)
        tracker = dep.tracker
        assert tracker is not None
        nxt: int | None = k + 1
        # a count the node could not place is tried again at every tick: none is skipped then
        settled = tracker.desired == len(dep.live())
        if self.settings.skip_idle and settled and dep.quiet() and tracker.window.last_value == 0:
            nxt = self._next_change(dep, k)
        elif self.settings.skip_idle and self._steady(dep, now, (k + 1) * self.interval):
            dep.asleep = k  # until its next event: see _wake
            nxt = None
        if nxt is None:
            dep.tick_at = None
        else:
            self._schedule_tick(dep, nxt)

    def _count_tick(self) -> None:
        self.ticks += 1
        if self.settings.budget is not None:
            self.settings.budget.spend(WorkBudget.TICK_COST)
        if self.settings.max_ticks is not None and self.ticks > self.settings.max_ticks:
            raise InvalidInput(
                f"this traffic needs more than {self.settings.max_ticks:,} autoscaler ticks to "
                "simulate",
                hint="give a shorter trace (or a rate and a pattern: a representative stretch "
                "is simulated)",
            )

    def _counts(self, dep: _Dep) -> tuple[int, int, int, int, int]:
        """What the autoscaler observes: replicas, in flight, queued, requests, queued jobs."""
        return (
            len(dep.live()),
            sum(r.in_flight for r in dep.ready),
            len(dep.queue),
            dep.requests,
            len(dep.backlog) + dep.jobs_running if dep.sim.jobs else 0,
        )

    def _autoscale(self, dep: _Dep, now: float) -> None:
        """One tick of :meth:`modelplane.autoscale.loop.Autoscaler.tick`: observe, decide,
        converge if the count differs."""
        tracker = dep.tracker
        assert tracker is not None
        counts = self._counts(dep)
        if counts != dep.inputs:
            dep.inputs, dep.inputs_since = counts, now
        live, in_flight, queued, requests, queued_jobs = counts
        tracker.observe(
            now,
            replicas=live,
            in_flight=in_flight,
            queued=queued,
            requests_so_far=requests,
            queued_jobs=queued_jobs,
        )
        if tracker.desired != live:
            self._converge(dep, now)

    def _steady(self, dep: _Dep, now: float, then: float) -> bool:
        """Whether, after the tick at ``now``, every tick until the deployment's next event
        would observe the same counts and decide the same thing with the same policy state.

        Between its events nothing the autoscaler observes changes (ticks only read, and this
        one asked for no change), so what can differ is the window's averages and ``now``.
        Once the counts have held for the whole window (and a bucket either side), both
        averages are their sum up to rounding; ``decide`` is then asked, at the next tick,
        with that sum and with it nudged by a relative 1e-12 either way — hundreds of times the
        rounding of its bucket sums — and must keep the count and the state every time. Panic and
        a held scale-down carry timers in the state, so they are never slept through; with
        work waiting the idle timeout cannot run. The skipped ticks are caught up by
        :meth:`_wake`.
        """
        tracker = dep.tracker
        assert tracker is not None
        live, in_flight, queued, requests, queued_jobs = dep.inputs
        window = tracker.window
        state = tracker.state
        if (
            in_flight + queued + queued_jobs == 0
            or tracker.desired != live
            or state.panic_since is not None
            or state.scale_down_wanted_since is not None
            or now - dep.inputs_since < window.horizon + 2 * window.granularity
        ):
            return False
        ctx = tracker.context(
            then,
            replicas=live,
            in_flight=in_flight,
            queued=queued,
            requests_so_far=requests,
            queued_jobs=queued_jobs,
        )
        level = float(in_flight + queued)
        for x in (level, level * (1 - 1e-12), level * (1 + 1e-12)):
            nudged = replace(ctx, stable_concurrency=x, panic_concurrency=x)
            decision, after = decide(tracker.config, nudged, state, then)
            if decision.desired_replicas != live or after != state:
                return False
        return True

    def _wake(self, dep: _Dep, now: float, pushed: float) -> None:
        """Before an event of a sleeping deployment (at ``now``, scheduled at ``pushed``): run
        the ticks it would have run before it, then tick on from there.

        Skipped ticks decide nothing new (:meth:`_steady`), but their samples shape the window
        and ``last_request_at``; the window keeps only a horizon of buckets, so the last ticks
        within a horizon (and two buckets) of the event are run for real — the window and the
        tracker end exactly as if every tick had run — and the older ones not at all.
        A tick at exactly ``now`` came first if it was scheduled (one interval before it)
        earlier than the event was.
        """
        k = dep.asleep
        assert k is not None and dep.tracker is not None
        dep.asleep = None
        step = self.interval
        m = math.floor(now / step)  # the last tick before the event
        while m > k and m * step >= now:
            m -= 1
        while (m + 1) * step < now:
            m += 1
        if (m + 1) * step == now and pushed > m * step:
            m += 1
        window = dep.tracker.window
        reach = math.ceil((window.horizon + 2 * window.granularity) / step) + 2
        for j in range(max(k + 1, m - reach), m + 1):
            self._count_tick()
            self._autoscale(dep, j * step)
        self._schedule_tick(dep, max(m, k) + 1)

    def _next_change(self, dep: _Dep, k: int) -> int | None:
        """The first tick after tick ``k``, before the next arrival, at which a quiet
        deployment's decision or policy state would change; None if there is none."""
        tracker = dep.tracker
        assert tracker is not None
        step = self.interval
        horizon = self.until
        if dep.next_arrival < len(dep.sim.arrivals):
            horizon = min(horizon, dep.sim.arrivals[dep.next_arrival])
        replicas = len(dep.live())
        current = (tracker.desired, tracker.state)

        def changed(j: int) -> bool:
            decision, state = tracker.peek(j * step, replicas=replicas)
            return (decision.desired_replicas, state) != current

        last = math.floor(horizon / step)
        if last <= k:
            return None
        if changed(k + 1):
            return k + 1
        if not changed(last):
            return None
        lo, hi = k + 1, last  # changed(lo) is False, changed(hi) is True
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if changed(mid):
                hi = mid
            else:
                lo = mid
        return hi

    # -- the reconciler ----------------------------------------------------------------------
    def _prestart(self, dep: _Dep) -> None:
        """Replicas the deployment has before traffic begins (dedicated, or scale.min): started
        early enough to be ready at time 0, or at time 0 for a deployment created then."""
        want = dep.desired()
        at = 0.0 if dep.sim.created_at_start else -dep.costs.startup
        for _ in range(want):
            replica = self._start(dep, at, shared=dep.sim.created_at_start)
            if replica is None:
                break
            if dep.sim.created_at_start:
                dep.result.cold_starts += 1
        self._publish(dep, 0.0)

    def _converge(self, dep: _Dep, now: float) -> None:
        """:meth:`modelplane.controlplane.reconciler.Reconciler.converge`."""
        want = dep.desired()
        live = dep.live()
        if len(live) < want:
            cold = not any(r.ready for r in live)
            for _ in range(want - len(live)):
                replica = self._start(dep, now)
                if replica is None:
                    break
                if cold:
                    dep.result.cold_starts += 1
        elif len(live) > want:
            for replica in scale_down_order(live, lambda r: r.in_flight)[: len(live) - want]:
                self._stop(replica, now)
        self._publish(dep, now)

    def _start(self, dep: _Dep, now: float, shared: bool = True) -> _Replica | None:
        granted = place(self.inventory, self.grants.values(), dep.usage)
        if isinstance(granted, Refusal):
            dep.result.not_placed += 1
            return None
        replica = _Replica(dep, now, granted)
        self.grants[id(replica)] = granted
        dep.replicas.append(replica)
        dep.result.starts += 1
        self._step(dep, max(now, 0.0))
        startup = dep.costs.draw_startup(dep.rng)
        if not shared:  # ready before the traffic begins: nothing to share the cores with
            self.at(now + startup, _READY, (replica, replica.version))
        else:
            self._work(replica, _READY, startup, now)
        return replica

    def _ready(self, replica: _Replica, now: float) -> None:
        if replica.state != "starting":
            return  # stopped while it was loading
        dep = replica.dep
        replica.state = "ready"
        replica.ready_at = now
        dep.ready.append(replica)
        self._publish(dep, now)
        self._drain(dep, now)
        if dep.fed:
            self._runner_pass(dep, now)

    def _stop(self, replica: _Replica, now: float) -> None:
        dep = replica.dep
        was = replica.state
        replica.state = "stopping"
        if was == "ready":
            dep.ready.remove(replica)
        elif was == "starting":  # its load is abandoned: the process is stopped
            replica.version += 1
            self._finish_work(replica, now)
        if not replica.pending and not replica.exiting:
            replica.exiting = True
            self.at(now + dep.costs.stop_seconds, _EXIT, replica)

    def _exit(self, replica: _Replica, now: float) -> None:
        dep = replica.dep
        dep.replicas.remove(replica)
        self.grants.pop(id(replica), None)
        self._account(dep, replica, now)
        self._step(dep, now)
        self._publish(dep, now)

    # -- the node's cores --------------------------------------------------------------------
    def _work(self, replica: _Replica, kind: int, seconds: float, now: float) -> None:
        """Schedule ``seconds`` of work (a start-up or a service, measured alone) that ends
        with a ``kind`` event, at the replica's share of the cores."""
        if self.cores is None:
            self.at(now + seconds, kind, (replica, replica.version))
            return
        self._advance(now)
        replica.work_kind, replica.work_left = kind, seconds
        self.busy[replica] = None
        self._reshare(now, replica)

    def _finish_work(self, replica: _Replica, now: float) -> None:
        if self.cores is None or replica not in self.busy:
            return
        self._advance(now)
        del self.busy[replica]
        self._reshare(now, None)

    def _advance(self, now: float) -> None:
        elapsed = now - self.rate_since
        if elapsed > 0:
            done = elapsed * self.rate
            for r in self.busy:
                r.work_left -= done
        self.rate_since = max(self.rate_since, now)

    def _reshare(self, now: float, added: _Replica | None) -> None:
        """Each busy replica's end again at the new share (only the added one's if the share
        did not change)."""
        assert self.cores is not None
        n = len(self.busy)
        rate = self._speed(n)
        again = self.busy if rate != self.rate else ((added,) if added is not None else ())
        self.rate = rate
        for r in again:
            r.version += 1
            self.at(now + max(r.work_left, 0.0) / rate, r.work_kind, (r, r.version))

    def _speed(self, busy: int) -> float:
        """Each busy replica's speed relative to one measured alone (among the other work)."""
        assert self.cores is not None
        if busy <= 1:
            return 1.0
        other = self.settings.other_load
        return min(1.0, self.cores / (other + busy)) / min(1.0, self.cores / (other + 1))

    def _publish(self, dep: _Dep, now: float) -> None:
        """The per-replica limit the reconciler gives the pool after every change."""
        starting = sum(1 for r in dep.replicas if r.state == "starting")
        can_grow = starting > 0 or (dep.serverless and len(dep.live()) < dep.spec.scale.max)
        limit = per_replica_limit(dep.spec.scale.target_concurrency, can_grow=can_grow)
        if limit != dep.limit:
            dep.limit = limit
            self._drain(dep, now)

    def _account(self, dep: _Dep, replica: _Replica, end: float) -> None:
        seconds = max(end - max(replica.started_at, 0.0), 0.0)
        dep.result.replica_seconds += seconds
        dep.result.gpu_seconds += seconds * dep.spec.resources.gpu

    def _step(self, dep: _Dep, now: float) -> None:
        steps = dep.result.steps
        n = len(dep.replicas)
        if steps and steps[-1][0] == now:
            steps[-1] = (now, n)
        else:
            steps.append((now, n))


def simulate(
    deployments: Sequence[SimDeployment], settings: Settings | None = None
) -> list[DeploymentResult]:
    """Run the deployments side by side on one node and report what each one saw.

    Pure and deterministic: the same inputs give the same results, and nothing reads a clock.
    """
    return _Simulation(deployments, settings or Settings()).run()

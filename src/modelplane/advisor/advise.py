"""The advisor: the seed's rule picks an option, the simulator sizes and prices every option.

:func:`advise` is pure: the question (traffic, target, model, resources) and the model's measured
costs in, an :class:`Advice` out. Each option is sized by trying a few settings in the simulator
and keeping the cheapest that meets the latency target (or, without one, the cheapest whose p99
stays within three times the best), and reported with its simulated p50/p99, the share of
requests that met a cold start, replica-hours and GPU-hours per day, and a spec that
``modelplane deploy`` takes as is.

Synthesized traffic is simulated for a whole day when it is sparse (at most ``MAX_SIMULATED``
requests, on average ``WARM_GAP`` seconds or more apart), else for a representative stretch (one
to two hours) whose figures are scaled to a day; a trace is simulated as given and its figures
scaled to a day at its own rate. A dataset (one-off predictions) is simulated as its items
arriving at once, through the path each option takes (a batch run's fan-out into a deployment
made for it, or the job runner), for its completion time and the run's replica-seconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from modelplane.advisor.costs import Costs
from modelplane.advisor.rules import Need, Option, Pattern, Recommendation, recommend
from modelplane.advisor.simulator import (
    DeploymentResult,
    Settings,
    SimDeployment,
    WorkBudget,
    simulate,
)
from modelplane.advisor.traffic import synthesize
from modelplane.errors import InvalidInput
from modelplane.jobs.batches import DEFAULT_CONCURRENCY as BATCH_FANOUT
from modelplane.spec import DeploymentSpec, Mode, ModelRef, Resources, Scale

__all__ = ["Advice", "OptionReport", "Question", "advise"]

DAY = 86_400.0
MAX_SIMULATED = 20_000
MAX_STRETCH = 7200.0
WARM_GAP = 120.0
MAX_REQUESTS = 50_000
MAX_TICKS = 1_500_000
MAX_WORK = 700_000
"""Simulated work (:class:`WorkBudget` units) one advice may cost over all its simulations:
a few seconds of CPU at most (a day at 20,000 requests an hour takes ~530,000)."""
"""Autoscaler ticks one simulation may take (a trace busy for months would take minutes)."""
TARGETS = (1, 2, 4)
MAX_REPLICAS = 256  # what a spec allows
DEFAULT_BURST = 8
MAX_DATASET_SIMULATED = 20_000
"""Items of a one-off run simulated one by one; a larger dataset is extended from two runs."""


@dataclass(frozen=True)
class Question:
    """What the advisor is asked. ``trace``: request times (seconds from 0) instead of a rate
    and a pattern."""

    need: Need
    name: str = "my-model"
    model: ModelRef = field(default_factory=lambda: ModelRef(path="."))
    resources: Resources = field(default_factory=Resources)
    trace: tuple[float, ...] | None = None
    seed: int = 0


@dataclass
class OptionReport:
    option: Option
    title: str
    spec: dict[str, Any] | None
    snippet: str
    p50_ms: float | None = None
    p99_ms: float | None = None
    cold_share: float | None = None
    replica_hours_per_day: float | None = None
    gpu_hours_per_day: float | None = None
    replica_seconds: float | None = None
    gpu_seconds: float | None = None
    makespan_hours: float | None = None
    meets_slo: bool | None = None
    slo_miss_ms: float | None = None
    refused: int = 0
    notes: list[str] = field(default_factory=list)
    timeline: dict[str, list[float]] | None = None

    def to_dict(self) -> dict[str, Any]:
        def num(x: float | None, digits: int = 3) -> float | None:
            return None if x is None or math.isnan(x) else round(x, digits)

        return {
            "option": self.option.value,
            "title": self.title,
            "p50_ms": num(self.p50_ms),
            "p99_ms": num(self.p99_ms),
            "cold_start_share": num(self.cold_share, 5),
            "replica_hours_per_day": num(self.replica_hours_per_day),
            "gpu_hours_per_day": num(self.gpu_hours_per_day),
            "replica_seconds": num(self.replica_seconds),
            "gpu_seconds": num(self.gpu_seconds),
            "makespan_hours": num(self.makespan_hours, 7),
            "meets_slo": self.meets_slo,
            "slo_miss_ms": num(self.slo_miss_ms),
            "refused": self.refused,
            "notes": self.notes,
            "spec": self.spec,
            "snippet": self.snippet,
            "timeline": _clean(self.timeline) if self.timeline else None,
        }


@dataclass
class Advice:
    recommendation: Recommendation
    options: list[OptionReport]
    costs: Costs
    traffic: dict[str, Any]

    @property
    def recommended(self) -> OptionReport | None:
        return next((o for o in self.options if o.option is self.recommendation.option), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "recommendation": {
                "option": self.recommendation.option.value,
                "rule": self.recommendation.rule,
                "reason": self.recommendation.reason,
            },
            "costs": self.costs.to_dict(),
            "traffic": self.traffic,
            "options": [o.to_dict() for o in self.options],
        }


def _clean(timeline: dict[str, list[float]]) -> dict[str, list[float | None]]:
    return {
        k: [None if isinstance(x, float) and math.isnan(x) else x for x in v]
        for k, v in timeline.items()
    }


# -- the advisor -----------------------------------------------------------------------------


def advise(question: Question, costs: Costs, settings: Settings | None = None) -> Advice:
    """Recommend an option and compare every option that applies. Pure and deterministic."""
    settings = settings or Settings(max_ticks=MAX_TICKS)
    budget = settings.budget
    if budget is None:
        budget = WorkBudget(MAX_WORK)
        settings = replace(settings, budget=budget)
    need = question.need
    rec = recommend(need, costs.startup + costs.service.quantile(0.99))
    if need.dataset_size is not None:
        traffic = {"dataset_size": need.dataset_size, "latency_slo_ms": need.latency_slo_ms}
        return Advice(rec, _dataset_options(question, costs, budget), costs, traffic)
    arrivals, period, traffic = _traffic(question, costs)
    traffic["latency_slo_ms"] = need.latency_slo_ms
    factor = DAY / period
    options: list[OptionReport] = []
    serverless = _size_serverless(question, costs, arrivals, settings, factor)
    options.append(serverless)
    options.append(_size_dedicated(question, costs, arrivals, settings, factor))
    options.append(_async(question, costs, arrivals, settings, factor, serverless))
    options.append(_export(question, serverless))
    return Advice(rec, options, costs, traffic)


def _traffic(question: Question, costs: Costs) -> tuple[list[float], float, dict[str, Any]]:
    need = question.need
    if question.trace is not None:
        arrivals = list(question.trace)
        if not arrivals:
            raise InvalidInput("the trace holds no requests")
        span = max(arrivals[-1], 1.0)
        info = {
            "source": "trace",
            "requests": len(arrivals),
            "span_seconds": round(span, 3),
            "requests_per_hour": round(len(arrivals) / span * 3600, 3),
            "peak_concurrency": _peak(arrivals, costs.service.mean),
            "simulated_seconds": round(span, 3),
            "scaled_to_day_by": round(DAY / span, 4),
        }
        return arrivals, span, info
    rph = need.requests_per_hour
    if rph is None or not rph > 0:
        raise InvalidInput(
            "say how much traffic to expect: --requests-per-hour (with --pattern) or --trace"
        )
    pattern = need.pattern or Pattern.steady
    per_second = rph / 3600.0
    period = DAY
    if per_second * DAY > MAX_SIMULATED or 1 / per_second < WARM_GAP:
        # Busy all day: every tick of the autoscaler runs, so a representative stretch stands
        # for the day. Sparse traffic is simulated whole (its idle ticks are skipped).
        period = max(3600.0, min(MAX_STRETCH, MAX_SIMULATED / per_second))
        # a very high rate: fewer seconds, never more than MAX_REQUESTS requests
        period = min(period, MAX_REQUESTS / per_second)
    peak = need.peak_concurrency or DEFAULT_BURST
    arrivals = synthesize(pattern, rph, period, peak=peak, seed=question.seed)
    info = {
        "source": "pattern",
        "pattern": pattern.value,
        "requests_per_hour": rph,
        "peak_concurrency": need.peak_concurrency,
        "requests": len(arrivals),
        "simulated_seconds": period,
        "scaled_to_day_by": round(DAY / period, 4),
    }
    return arrivals, period, info


def _peak(arrivals: list[float], service: float) -> int:
    """Most requests arriving within one service time of each other: the concurrency a trace
    asks for at its peak."""
    width = max(service, 0.001)
    best, j = 0, 0
    for i, t in enumerate(arrivals):
        while arrivals[j] < t - width:
            j += 1
        best = max(best, i - j + 1)
    return best


def _spec(question: Question, mode: Mode, scale: Scale, **extra: Any) -> DeploymentSpec:
    return DeploymentSpec(
        name=question.name,
        model=question.model,
        mode=mode,
        resources=question.resources,
        scale=scale,
        **extra,
    )


def _snippet(spec: DeploymentSpec) -> str:
    """The spec as YAML for ``modelplane deploy FILE``: every field the option sets, spelled out."""
    model: dict[str, Any] = {"path": spec.model.path}
    if spec.model.loader != "auto":
        model["loader"] = spec.model.loader
    if spec.model.entrypoint:
        model["entrypoint"] = spec.model.entrypoint
    r = spec.resources
    memory: int | str = r.memory
    if r.memory % 2**20 == 0:
        memory = f"{r.memory // 2**20}Mi"
    s = spec.scale
    scale: dict[str, Any]
    if spec.mode is Mode.dedicated:
        scale = {"replicas": s.replicas}
    else:
        scale = {
            "min": s.min,
            "max": s.max,
            "target_concurrency": s.target_concurrency,
            "idle_timeout": s.idle_timeout,
        }
    data: dict[str, Any] = {
        "name": spec.name,
        "model": model,
        "mode": spec.mode.value,
        "resources": {"cpu": r.cpu, "memory": memory, "gpu": r.gpu},
        "scale": scale,
    }
    if spec.input is not None:
        data["input"], data["output"] = spec.input, spec.output
    return yaml.safe_dump(data, sort_keys=False)


def _report(
    option: Option,
    title: str,
    spec: DeploymentSpec,
    result: DeploymentResult,
    question: Question,
    factor: float,
) -> OptionReport:
    p50 = result.quantile(0.5) * 1000
    p99 = result.quantile(0.99) * 1000
    report = OptionReport(
        option,
        title,
        spec.model_dump(mode="json"),
        _snippet(spec),
        p50_ms=p50,
        p99_ms=p99,
        cold_share=result.cold_share,
        replica_hours_per_day=result.replica_seconds * factor / 3600,
        gpu_hours_per_day=result.gpu_seconds * factor / 3600,
        replica_seconds=result.replica_seconds,
        refused=result.refused,
        timeline=result.timeline(),
    )
    _judge(report, question.need.latency_slo_ms)
    if result.refused:
        report.notes.append(f"{result.refused} request(s) refused (queue full or timed out)")
    return report


def _judge(report: OptionReport, slo: float | None) -> None:
    if slo is None or report.p99_ms is None or math.isnan(report.p99_ms):
        return
    report.meets_slo = report.p99_ms <= slo and report.refused == 0
    if not report.meets_slo:
        report.slo_miss_ms = report.p99_ms - slo
        report.notes.append(
            f"misses the {slo:g} ms p99 target by {report.p99_ms - slo:.0f} ms "
            f"({report.p99_ms / slo:.1f}x)"
        )


def _pick(candidates: list[OptionReport], slo: float | None) -> OptionReport:
    """The cheapest that meets the target; without a target, the cheapest whose p99 is within
    three times the best; if none meets the target, the one with the lowest p99."""

    def p99(o: OptionReport) -> float:
        return math.inf if o.p99_ms is None or math.isnan(o.p99_ms) else o.p99_ms

    def cost(o: OptionReport) -> tuple[float, float]:
        return (o.replica_hours_per_day or 0.0, p99(o))

    if slo is not None:
        meeting = [o for o in candidates if o.meets_slo]
        if meeting:
            return min(meeting, key=cost)
        return min(candidates, key=lambda o: (p99(o), cost(o)))
    best = min(p99(o) for o in candidates)
    return min((o for o in candidates if p99(o) <= 3 * best), key=cost)


def _run(
    spec: DeploymentSpec,
    arrivals: list[float],
    costs: Costs,
    settings: Settings,
    *,
    jobs: bool = False,
) -> DeploymentResult:
    return simulate([SimDeployment(spec, arrivals, costs, jobs=jobs)], settings)[0]


def _size_serverless(
    question: Question, costs: Costs, arrivals: list[float], settings: Settings, factor: float
) -> OptionReport:
    need = question.need
    service = costs.service.mean
    rate = len(arrivals) / max(arrivals[-1], 1.0) if arrivals else 0.0
    peak = need.peak_concurrency or _peak(arrivals, service) if arrivals else 1
    concurrency = max(peak, math.ceil(2 * rate * service) + 1)
    gap = 1 / rate if rate > 0 else math.inf
    idle = 60.0 if gap > 300 or need.pattern is Pattern.spaced else 300.0
    candidates = []
    for target in TARGETS:
        top = max(1, min(MAX_REPLICAS, math.ceil(concurrency / target)))
        scale = Scale(min=0, max=top, target_concurrency=target, idle_timeout=idle)
        spec = _spec(question, Mode.serverless, scale)
        title = f"min 0, max {top}, target_concurrency {target}, idle_timeout {idle:g} s"
        candidates.append(
            _report(
                Option.serverless,
                title,
                spec,
                _run(spec, arrivals, costs, settings),
                question,
                factor,
            )
        )
    chosen = _pick(candidates, need.latency_slo_ms)
    if need.latency_slo_ms is not None and not chosen.meets_slo and (chosen.cold_share or 0) > 0.01:
        chosen.notes.append(
            "cold starts set the tail: scale.min: 1 keeps a replica warm (at a dedicated "
            "replica's cost)"
        )
    return chosen


def _size_dedicated(
    question: Question, costs: Costs, arrivals: list[float], settings: Settings, factor: float
) -> OptionReport:
    rate = len(arrivals) / max(arrivals[-1], 1.0) if arrivals else 0.0
    first = min(max(1, math.ceil(rate * costs.service.mean / 0.75)), MAX_REPLICAS)
    slo = question.need.latency_slo_ms
    tried: list[OptionReport] = []
    for n in range(first, min(first + 4, MAX_REPLICAS + 1)):
        spec = _spec(question, Mode.dedicated, Scale(replicas=n))
        report = _report(
            Option.dedicated,
            f"{n} replica(s), always on",
            spec,
            _run(spec, arrivals, costs, settings),
            question,
            factor,
        )
        tried.append(report)
        if slo is None or report.meets_slo:
            return report
    # None meets the target: more replicas than help the tail are waste, so the fewest whose
    # p99 is within 5 % of the best
    best = min(_p99(o) for o in tried)
    return next(o for o in tried if _p99(o) <= best * 1.05)


def _p99(o: OptionReport) -> float:
    return math.inf if o.p99_ms is None or math.isnan(o.p99_ms) else o.p99_ms


def _async(
    question: Question,
    costs: Costs,
    arrivals: list[float],
    settings: Settings,
    factor: float,
    serverless: OptionReport,
) -> OptionReport:
    assert serverless.spec is not None
    base = DeploymentSpec.model_validate(serverless.spec)
    spec = base.model_copy(
        update={"input": f"{question.name}-in", "output": f"{question.name}-out"}
    )
    s = base.scale
    title = (
        f"buckets {spec.input} -> {spec.output}; max {s.max}, target_concurrency "
        f"{s.target_concurrency:g}"
    )
    report = _report(
        Option.async_jobs,
        title,
        spec,
        _run(spec, arrivals, costs, settings, jobs=True),
        replace(question, need=replace(question.need, latency_slo_ms=None)),
        factor,
    )
    report.notes.append("latency is upload to result, through the job queue; no client waits")
    return report


def _export(question: Question, serverless: OptionReport) -> OptionReport:
    report = replace(serverless, option=Option.export, notes=[], timeline=serverless.timeline)
    report.title = "Knative on your cluster, same scale settings"
    report.snippet = (
        serverless.snippet
        + "# then: modelplane export <this file> --target knative   (or kserve, kubernetes,"
        " nomad, oscar)\n"
    )
    report.notes.append(
        "simulated with this platform's policy, which follows Knative's; your cluster's cold "
        "starts may differ"
    )
    _judge(report, question.need.latency_slo_ms)
    return report


def _dataset_options(question: Question, costs: Costs, budget: WorkBudget) -> list[OptionReport]:
    """The one-off options, simulated: the dataset's items all arrive at time 0 and go through
    the platform's own paths — a dedicated deployment made for the run, fed by a batch run
    (``BATCH_FANOUT`` in flight) and deleted when the last answer is in; or uploads to a
    serverless deployment's bucket, fed by the job runner, which scales back to zero after
    its idle timeout."""
    n = question.need.dataset_size or 0
    service = costs.service.mean
    replicas = max(1, min(8, math.ceil(n * service / 3600)))
    fanout = BATCH_FANOUT
    dedicated = _spec(question, Mode.dedicated, Scale(replicas=replicas))
    run = _simulate_dataset(
        n,
        costs,
        lambda items: SimDeployment(
            dedicated,
            items,
            costs,
            fanout=fanout,
            created_at_start=True,
            delete_when_done=True,
        ),
        budget,
    )
    serverless = _spec(
        question,
        Mode.serverless,
        Scale(min=0, max=replicas, target_concurrency=1, idle_timeout=60),
        input=f"{question.name}-in",
        output=f"{question.name}-out",
    )
    uploads = _simulate_dataset(
        n, costs, lambda items: SimDeployment(serverless, items, costs, jobs=True), budget
    )
    out = [
        _dataset_report(
            Option.oneoff,
            f"{replicas} replica(s), fan-out {fanout}, deleted afterwards",
            dedicated,
            _snippet(dedicated) + f"# then: modelplane batch {question.name} --input DIR "
            f"--output DIR; modelplane rm {question.name}\n",
            run,
        ),
        _dataset_report(
            Option.async_jobs,
            f"buckets {serverless.input} -> {serverless.output}; max {replicas}",
            serverless,
            _snippet(serverless) + f"# then: modelplane upload {question.name} FILE...; "
            f"modelplane jobs {question.name}\n",
            uploads,
            ["replica time includes the idle timeout (60 s) before it scales back to zero"],
        ),
        _dataset_report(
            Option.batch,
            f"`modelplane batch` over {replicas} replica(s), fan-out {fanout}",
            dedicated,
            f"# modelplane batch {question.model.path} --replicas {replicas} "
            f"--gpu {question.resources.gpu} --input DIR|s3://... --output ...\n"
            "# (a dedicated deployment made for the run and removed after it)\n",
            run,
            ["resumable: a second run computes only what is missing"],
        ),
    ]
    export = replace(out[0], option=Option.export, notes=["run on your own cluster"])
    export.title = "the dedicated deployment on your cluster (Kubernetes, Nomad)"
    export.snippet = out[0].snippet.split("# then")[0] + (
        "# then: modelplane export <this file> --target kubernetes\n"
    )
    out.append(export)
    return out


@dataclass(frozen=True)
class _DatasetRun:
    finish_seconds: float
    replica_seconds: float
    gpu_seconds: float
    simulated_items: int
    note: str


def _simulate_dataset(
    n: int,
    costs: Costs,
    deployment: Callable[[list[float]], SimDeployment],
    budget: WorkBudget,
) -> _DatasetRun:
    """Simulate ``n`` items arriving at once; beyond ``MAX_DATASET_SIMULATED``, two runs (of
    half that and of that many items) give the marginal time and replica time per item, and the
    figures are extended from the larger run at that rate (the start-up and the idle tail are
    paid once, so they cancel out of the difference)."""

    def once(items: int) -> tuple[float, float, float]:
        sim = deployment([0.0] * items)
        bound = (
            max(costs.startup_samples or (costs.startup,))
            + items * max(costs.service.samples or (costs.service.mean,))
            + sim.spec.scale.idle_timeout
            + 600.0
        )
        [r] = simulate([sim], Settings(until=bound, max_ticks=MAX_TICKS, budget=budget))
        if len(r.served) != items:
            raise InvalidInput(
                f"the simulated one-off run answered {len(r.served)} of {items} items"
            )
        return r.finished_at, r.replica_seconds, r.gpu_seconds

    if n <= MAX_DATASET_SIMULATED:
        finish, rs, gs = once(n)
        return _DatasetRun(finish, rs, gs, n, f"simulated: {n:,} items arriving at once")
    m = MAX_DATASET_SIMULATED
    small, big = once(m // 2), once(m)
    per = [(b - s) / (m - m // 2) for s, b in zip(small, big, strict=True)]
    extra = n - m
    finish, rs, gs = (b + p * extra for b, p in zip(big, per, strict=True))
    return _DatasetRun(
        finish,
        rs,
        gs,
        m,
        f"simulated {m // 2:,} and {m:,} items arriving at once, extended to {n:,} at the "
        f"marginal {per[0] * 1000:.2f} ms and {per[1] * 1000:.2f} replica-ms per item",
    )


def _dataset_report(
    option: Option,
    title: str,
    spec: DeploymentSpec,
    snippet: str,
    run: _DatasetRun,
    notes: list[str] | None = None,
) -> OptionReport:
    return OptionReport(
        option,
        title,
        spec.model_dump(mode="json"),
        snippet,
        makespan_hours=run.finish_seconds / 3600,
        replica_hours_per_day=run.replica_seconds / 3600,
        gpu_hours_per_day=run.gpu_seconds / 3600,
        replica_seconds=run.replica_seconds,
        gpu_seconds=run.gpu_seconds,
        notes=[*(notes or []), run.note],
    )

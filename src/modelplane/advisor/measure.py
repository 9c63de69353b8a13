"""The model's own costs, measured: from a deployment's recorded history, or from a short probe.

- **History.** A deployment's status keeps its recent cold starts (start to ready, and the load
  time the replica reported), its replicas' load times and events ("ready in 0.532 s"); the
  gateway keeps the service time of the most recent answers (a sync replica answers in order,
  so each answer's service began when it was sent or when the previous answer left, if later).
- **Probe.** Deploy the model serverless at zero on a platform and send one request (its first
  start also builds the deployment's warm template); once it is back at zero, send another (a
  cold start as they recur: the platform records start to ready and the load time), then a few
  warm ones timed one after the other, and delete the deployment. The gateway's recorded
  service times of the warm requests are the service times; each one's round trip minus its
  service time is the platform hop (the client's connection and HTTP, the gateway, the frame to
  the replica and back), which the simulator adds to every request without holding a replica.

The probe talks to the platform through a :class:`ProbeTarget`: :class:`modelplane.client.Client`
is one (the CLI's probe, over REST, on a running platform or one started for it); the control
plane has another over its own services (``POST /api/v1/advise`` with a model folder).
"""

from __future__ import annotations

import contextlib
import re
import secrets
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from modelplane.advisor.costs import Costs, ServiceTime
from modelplane.errors import InvalidInput, InvalidSpec, ModelFailed, ModelplaneError, Unavailable
from modelplane.spec import DeploymentSpec, ModelRef, Resources

__all__ = ["ProbeTarget", "from_history", "other_load", "probe", "sample_input"]

_READY_RE = re.compile(r"ready (?:from zero )?in ([0-9.]+) s")


def from_history(view: dict[str, Any], service_times: list[float]) -> Costs | None:
    """Costs from a deployment's view (``GET /api/v1/deployments/{name}``) and the gateway's
    recent service times; None when the history does not hold enough (no load time recorded or
    no answer served yet)."""
    status = view.get("status") or {}
    colds = [c for c in status.get("cold_starts") or [] if isinstance(c, dict)]
    loads = [float(c["load_seconds"]) for c in colds if _num(c.get("load_seconds"))]
    loads += [
        float(r["load_seconds"])
        for r in status.get("replicas") or []
        if isinstance(r, dict) and _num(r.get("load_seconds"))
    ]
    startups = [float(c["seconds"]) for c in colds if _num(c.get("seconds"))]
    for event in view.get("events") or []:
        if event.get("kind") in ("ready", "cold_start"):
            m = _READY_RE.search(str(event.get("message", "")))
            if m:
                startups.append(float(m.group(1)))
    if not loads or not startups or not service_times:
        return None
    load = statistics.median(loads)
    # A deployment's very first start also builds its warm template (seconds, not
    # milliseconds); it does not recur, so starts far above the median are left out.
    typical = statistics.median(startups)
    startups = [s for s in startups if s <= 5 * typical]
    overhead = max(statistics.median(startups) - load, 0.0)
    return Costs(
        load_seconds=load,
        start_overhead=overhead,
        service=ServiceTime.of(service_times),
        source="history",
        startup_samples=tuple(startups) if len(startups) > 1 else (),
        notes=(
            f"{len(startups)} recorded replica start(s), {len(loads)} load time(s), "
            f"{len(service_times)} recent answer(s)",
        ),
    )


def other_load(costs: Costs, cores: float) -> float:
    """The other work on a shared node, as runnable processes, that explains how much the
    probe's concurrent start-ups slowed each other (for ``Settings.other_load``); 0 when they
    were not measured.

    Fair sharing of ``cores`` among ``other`` processes and ``n`` replicas starting together
    slows each start by ``s = min(1, cores / (other + 1)) / min(1, cores / (other + n))``
    against one alone. On an idle node (``other`` 0) four starts on two cores take twice as
    long; the more other work there is, the less our own ``n`` adds (``s`` falls toward 1), so
    a measured ``s`` gives ``other``: ``cores * s - n`` where the node's cores are the limit
    (``s >= n / cores``), else ``(n - s) / (s - 1)``.
    """
    n = costs.concurrency
    if n < 2 or not costs.concurrent_startups or not costs.startup_samples or cores <= 0:
        return 0.0
    alone = statistics.median(costs.startup_samples)
    if alone <= 0:
        return 0.0
    s = statistics.median(costs.concurrent_startups) / alone
    if s >= n / cores:
        return min(max(cores * s - n, 0.0), max(cores - 1, 0.0))
    if s <= 1.0:
        return 1000.0  # they did not slow each other at all: ours are a drop in the node's work
    return min((n - s) / (s - 1), 1000.0)


class ProbeTarget(Protocol):
    """What the probe needs of a platform (the REST client's method names). Errors are the
    platform's own (:mod:`modelplane.errors`)."""

    def deploy(self, spec: DeploymentSpec) -> Any: ...

    def get(self, name: str) -> dict[str, Any]: ...

    def predict(self, name: str, inputs: Any = None) -> Any: ...

    def delete(self, name: str) -> None: ...

    def service_times(self, name: str) -> list[float]: ...


def _num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def sample_input(schema: dict[str, Any] | None) -> Any:
    """A small value that satisfies a simple JSON Schema (required properties, array bounds,
    numeric minimums, enums), for a probe of a model that names its input schema."""
    if not isinstance(schema, dict):
        return {}
    if schema.get("enum"):
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        required = schema.get("required") or list(props)
        return {k: sample_input(props.get(k)) for k in required}
    if kind == "array":
        n = int(schema.get("minItems", 1))
        return [sample_input(schema.get("items")) for _ in range(n)]
    if kind in ("number", "integer"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        return int(low) + (1 if "exclusiveMinimum" in schema else 0) if kind == "integer" else low
    if kind == "boolean":
        return False
    if kind == "string":
        return "x" * int(schema.get("minLength", 1))
    return None


def probe(
    client: ProbeTarget,
    model_path: str,
    *,
    body: Any | None = None,
    resources: Resources | None = None,
    warm: int = 10,
    cold: int = 3,
    gap: float = 0.25,
    model: ModelRef | None = None,
    concurrent: int = 0,
    bursts: int = 2,
    zero_timeout: float = 60.0,
    progress: Callable[[str], None] = lambda _msg: None,
    monotonic: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> Costs:
    """Deploy ``model_path`` for a moment, time ``cold`` cold starts and ``warm`` predictions.

    ``body``: the JSON input to send (default: one built from the model's input schema).
    ``gap``: seconds between warm requests. A replica that waited answers slower than one kept
    busy (the scheduler has to wake it, its caches are cold), and traffic that does not queue
    meets the waiting one. ``model``: the loader and entrypoint to use (default: recognised
    from the folder). ``concurrent``: also time ``bursts`` rounds of that many replicas started
    together from zero (``concurrent`` requests at once, each from a thread of its own, so the
    target must take calls from several threads), for :func:`other_load`. The probe deployment
    is deleted whatever happens.
    """
    name = f"advise-probe-{secrets.token_hex(3)}"
    spec = DeploymentSpec.parse(
        {
            "name": name,
            "model": (model or ModelRef(path=model_path)).model_dump(mode="json")
            | {"path": model_path},
            "mode": "serverless",
            "resources": (resources or Resources()).model_dump(mode="json"),
            "scale": {
                "min": 0,
                "max": max(1, concurrent),
                "target_concurrency": 1,
                "idle_timeout": 1,
            },
        }
    )
    progress(f"deploying {model_path} as {name} (serverless, at zero)")
    client.deploy(spec)
    try:
        # The first start of a deployment also builds its warm template (imports the model's
        # code); later cold starts fork from it. Both are timed; the second is the one that
        # recurs, so it is the one simulated.
        progress("first start (builds the warm template)")
        first = _cold_request(client, name, body, monotonic)
        first_startup = _last_start(client, name, model_path)[0]
        starts: list[tuple[float, float]] = []
        for i in range(cold):
            progress(f"waiting for the deployment to scale back to zero ({i + 1}/{cold})")
            _wait_zero(client, name, zero_timeout, sleep)
            progress(f"cold start from zero {i + 1}/{cold}")
            cold_seconds = _cold_request(client, name, body, monotonic)
            startup, load, status = _last_start(client, name, model_path)
            starts.append((startup, load))
        startup = statistics.median(s for s, _ in starts)
        load = statistics.median(ld for _, ld in starts)
        together = _concurrent_starts(
            client, name, body, concurrent, bursts, zero_timeout, sleep, progress
        )
        if body is None:
            body = sample_input((status.get("model") or {}).get("input_schema"))
        samples = []
        for i in range(warm):
            progress(f"warm request {i + 1}/{warm}")
            if i and gap > 0:
                sleep(gap)
            t0 = monotonic()
            try:
                client.predict(name, body)
            except InvalidInput:
                raise _bad_sample() from None
            samples.append(monotonic() - t0)
        recorded = client.service_times(name)[-warm:] if warm else []
    finally:
        progress(f"removing {name}")
        with contextlib.suppress(ModelplaneError):
            client.delete(name)
    hop: ServiceTime | None = None
    hop_note = "the platform hop was not measured (the gateway recorded no service times)"
    if len(recorded) == len(samples) and samples:
        # each warm request was alone on the replica: its round trip is the gateway's service
        # time of it plus the hop
        hops = [max(rtt - s, 0.0) for rtt, s in zip(samples, recorded, strict=True)]
        hop = ServiceTime.of(hops)
        service = ServiceTime.of(recorded)
        hop_note = (
            f"platform hop (round trip minus the gateway's service time): median "
            f"{statistics.median(hops) * 1000:.1f} ms, max {max(hops) * 1000:.1f} ms"
        )
    else:
        service = ServiceTime.of(samples)
    return Costs(
        load_seconds=load,
        start_overhead=max(startup - load, 0.0),
        service=service,
        source="probe",
        startup_samples=tuple(s for s, _ in starts),
        hop=hop,
        concurrent_startups=tuple(together),
        concurrency=concurrent if together else 0,
        notes=(
            hop_note,
            f"probe: {cold} cold start(s) from zero, median {startup * 1000:.0f} ms start to "
            f"ready ({load * 1000:.0f} ms of it the model's load; the last took "
            f"{cold_seconds * 1000:.0f} ms to the first answer); {warm} warm request(s), "
            f"{gap:g} s apart",
            f"the deployment's very first start, which also builds its warm template, took "
            f"{first_startup * 1000:.0f} ms ({first * 1000:.0f} ms to the first answer)",
        ),
    )


def _concurrent_starts(
    client: ProbeTarget,
    name: str,
    body: Any | None,
    n: int,
    bursts: int,
    timeout: float,
    sleep: Callable[[float], None],
    progress: Callable[[str], None],
) -> list[float]:
    """Start-to-ready times of the replicas that ``bursts`` rounds of ``n`` requests at once
    started from zero (a round that started fewer than two adds nothing)."""
    if n < 2:
        return []
    found: list[float] = []
    for i in range(bursts):
        _wait_zero(client, name, timeout, sleep)
        progress(f"{n} replicas started together from zero ({i + 1}/{bursts})")
        before = {c.get("at") for c in client.get(name)["status"].get("cold_starts") or []}
        with ThreadPoolExecutor(n) as pool:
            list(pool.map(lambda _: _cold_request(client, name, body, time.perf_counter), range(n)))
        _wait_starts(client, name, timeout, sleep)
        new = [
            c
            for c in client.get(name)["status"].get("cold_starts") or []
            if c.get("at") not in before
        ]
        seconds = [float(c["seconds"]) for c in new if _num(c.get("seconds"))]
        if len(seconds) >= 2:
            found += seconds
    return found


def _wait_starts(
    client: ProbeTarget, name: str, timeout: float, sleep: Callable[[float], None]
) -> None:
    """Until no replica of the deployment is still starting."""
    waited = 0.0
    while any(r.get("state") == "starting" for r in client.get(name)["status"]["replicas"]):
        if waited >= timeout:
            raise Unavailable(f"the probe's replicas did not finish starting in {timeout:g} s")
        sleep(0.05)
        waited += 0.05


def _cold_request(
    client: ProbeTarget, name: str, body: Any | None, monotonic: Callable[[], float]
) -> float:
    t0 = monotonic()
    try:
        client.predict(name, {} if body is None else body)
    except (InvalidInput, InvalidSpec, ModelFailed):
        if body is not None:
            raise _bad_sample() from None
        # no sample given: the model refused {} — its replica started all the same
    return monotonic() - t0


def _last_start(
    client: ProbeTarget, name: str, model_path: str
) -> tuple[float, float, dict[str, Any]]:
    status = client.get(name)["status"]
    colds = status.get("cold_starts") or []
    if not colds or colds[-1].get("load_seconds") is None:
        raise Unavailable(
            f"the probe's replica did not record its start-up: {status.get('last_error')}",
            hint=f"check the model with `modelplane run {model_path}`",
        )
    return float(colds[-1]["seconds"]), float(colds[-1]["load_seconds"]), status


def _wait_zero(
    client: ProbeTarget, name: str, timeout: float, sleep: Callable[[float], None]
) -> None:
    waited = 0.0
    while client.get(name)["status"]["replicas"]:
        if waited >= timeout:
            raise Unavailable(f"the probe's deployment did not scale to zero in {timeout:g} s")
        sleep(0.1)
        waited += 0.1


def _bad_sample() -> InvalidInput:
    return InvalidInput(
        "the model refused the probe's input",
        hint="pass a valid input with --sample FILE (a JSON request body)",
    )

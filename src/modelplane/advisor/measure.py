"""The model's own costs, measured: from a deployment's recorded history, or from a short probe.

- **History.** A deployment's status keeps its recent cold starts (start to ready, and the load
  time the replica reported), its replicas' load times and events ("ready in 0.532 s"); the
  gateway keeps the service time of the most recent answers (a sync replica answers in order,
  so each answer's service began when it was sent or when the previous answer left, if later).
- **Probe.** Deploy the model serverless at zero on a platform, send one request (a cold start:
  the platform records start to ready and the load time), then a few warm ones timed one after
  the other, and delete the deployment. The warm requests' round trips are the service times
  (they include the gateway hop, a fraction of a millisecond here).

The probe talks to the platform only through :class:`modelplane.client.Client`; which platform
(a running one, or one started for the probe) is the caller's choice.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import statistics
import time
from collections.abc import Callable
from typing import Any

from modelplane.advisor.costs import Costs, ServiceTime
from modelplane.client import Client
from modelplane.errors import InvalidInput, InvalidSpec, ModelFailed, ModelplaneError, Unavailable
from modelplane.spec import DeploymentSpec, Resources

__all__ = ["from_history", "probe", "sample_input"]

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
    overhead = max(statistics.median(startups) - load, 0.0)
    return Costs(
        load_seconds=load,
        start_overhead=overhead,
        service=ServiceTime.of(service_times),
        source="history",
        notes=(
            f"{len(startups)} recorded replica start(s), {len(loads)} load time(s), "
            f"{len(service_times)} recent answer(s)",
        ),
    )


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
    client: Client,
    model_path: str,
    *,
    body: Any | None = None,
    resources: Resources | None = None,
    warm: int = 10,
    progress: Callable[[str], None] = lambda _msg: None,
    monotonic: Callable[[], float] = time.perf_counter,
) -> Costs:
    """Deploy ``model_path`` for a moment, time a cold start and ``warm`` predictions.

    ``body``: the JSON input to send (default: one built from the model's input schema).
    The probe deployment is deleted whatever happens.
    """
    name = f"advise-probe-{secrets.token_hex(3)}"
    spec = DeploymentSpec.parse(
        {
            "name": name,
            "model": {"path": model_path},
            "mode": "serverless",
            "resources": (resources or Resources()).model_dump(mode="json"),
            "scale": {"min": 0, "max": 1, "target_concurrency": 1, "idle_timeout": 30},
        }
    )
    progress(f"deploying {model_path} as {name} (serverless, at zero)")
    client.deploy(spec)
    try:
        progress("cold start: first request")
        t0 = monotonic()
        try:
            client.predict(name, {} if body is None else body)
        except (InvalidInput, InvalidSpec, ModelFailed):
            if body is not None:
                raise _bad_sample() from None
            # no sample given: the model refused {} — its replica started all the same
        cold_seconds = monotonic() - t0
        view = client.get(name)
        status = view["status"]
        colds = status.get("cold_starts") or []
        if not colds or colds[-1].get("load_seconds") is None:
            raise Unavailable(
                f"the probe's replica did not record its start-up: {status.get('last_error')}",
                hint=f"check the model with `modelplane run {model_path}`",
            )
        startup = float(colds[-1]["seconds"])
        load = float(colds[-1]["load_seconds"])
        if body is None:
            body = sample_input((status.get("model") or {}).get("input_schema"))
        samples = []
        for i in range(warm):
            progress(f"warm request {i + 1}/{warm}")
            t0 = monotonic()
            try:
                client.predict(name, body)
            except InvalidInput:
                raise _bad_sample() from None
            samples.append(monotonic() - t0)
    finally:
        progress(f"removing {name}")
        with contextlib.suppress(ModelplaneError):
            client.delete(name)
    return Costs(
        load_seconds=load,
        start_overhead=max(startup - load, 0.0),
        service=ServiceTime.of(samples),
        source="probe",
        notes=(
            f"probe: 1 cold start ({cold_seconds * 1000:.0f} ms to the first answer, "
            f"{startup * 1000:.0f} ms start to ready, {load * 1000:.0f} ms of it the model's "
            f"load), {warm} warm request(s)",
        ),
    )


def _bad_sample() -> InvalidInput:
    return InvalidInput(
        "the model refused the probe's input",
        hint="pass a valid input with --sample FILE (a JSON request body)",
    )

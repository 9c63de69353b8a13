"""The body of ``POST /api/v1/advise``: what the user knows, with its bounds stated.

The same object the CLI builds from its flags; it turns into a :class:`Question` and, when the
costs are given rather than read from a deployment's history, into :class:`Costs`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from modelplane.advisor.advise import Question
from modelplane.advisor.costs import Costs, ServiceTime
from modelplane.advisor.rules import Need, Pattern
from modelplane.spec import ModelRef, Resources
from modelplane.spec.deployment import NAME_RE, NAME_SCHEMA

# The rules ``AdviseRequest._check`` enforces across fields, as the OpenAPI document states them.
_CROSS_FIELD: dict[str, Any] = {
    "oneOf": [
        {
            "required": ["deployment"],
            "properties": {
                "deployment": {"type": "string", **NAME_SCHEMA},
                "costs": {"type": "null"},
                "model": {"type": "null"},
            },
        },
        {
            "required": ["costs"],
            "properties": {
                "costs": {"type": "object"},
                "deployment": {"type": "null"},
                "model": {"type": "null"},
            },
        },
        {
            "required": ["model"],
            "properties": {
                "model": {"type": "object"},
                "deployment": {"type": "null"},
                "costs": {"type": "null"},
            },
        },
    ],
    "anyOf": [
        {"required": [field], "properties": {field: {"not": {"type": "null"}}}}
        for field in ("requests_per_hour", "trace", "dataset_size")
    ],
    "not": {
        "required": ["trace", "requests_per_hour"],
        "properties": {"trace": {"type": "array"}, "requests_per_hour": {"type": "number"}},
    },
}

__all__ = ["AdviseRequest", "GivenCosts"]

MAX_TRACE_ITEMS = 200_000


class GivenCosts(BaseModel):
    """A model's costs measured elsewhere (e.g. by ``modelplane advise --model``'s probe)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    load_seconds: Annotated[float, Field(ge=0, le=3600, description="the model's load()")]
    start_overhead_seconds: Annotated[
        float, Field(ge=0, le=600, description="start to ready, minus the load")
    ] = 0.01
    service_seconds: Annotated[
        list[Annotated[float, Field(ge=0, le=3600)]],
        Field(min_length=1, max_length=10_000, description="per-request service times"),
    ]
    hop_seconds: Annotated[
        list[Annotated[float, Field(ge=0, le=600)]] | None,
        Field(
            max_length=10_000,
            description="per-request platform hop: round trip minus service time",
        ),
    ] = None

    def costs(self) -> Costs:
        return Costs(
            load_seconds=self.load_seconds,
            start_overhead=self.start_overhead_seconds,
            service=ServiceTime.of(self.service_seconds),
            source="given",
            hop=ServiceTime.of(self.hop_seconds) if self.hop_seconds else None,
        )


class AdviseRequest(BaseModel):
    """One of ``deployment`` (its recorded history gives the costs), ``model`` (a folder on the
    platform's machine, measured by a probe) or ``costs``; traffic as a rate and a pattern, or
    as a ``trace`` of request times in seconds; or a ``dataset_size`` for one-off
    predictions."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_CROSS_FIELD)

    deployment: str | None = Field(
        default=None, description="a deployment of yours", json_schema_extra=NAME_SCHEMA
    )
    costs: GivenCosts | None = None
    model: ModelRef | None = Field(
        default=None,
        description="a model folder the platform may read (as for a deployment): probed — "
        "deployed at zero for a moment, a few cold starts and predictions timed, removed",
    )
    sample: Any = Field(
        default=None, description="with model: the probe's JSON input (default: from its schema)"
    )
    requests_per_hour: Annotated[
        float | None, Field(ge=1e-6, le=1e8, description="at least one in a million hours")
    ] = None
    peak_concurrency: Annotated[int | None, Field(ge=1, le=100_000)] = None
    pattern: Pattern | None = None
    trace: Annotated[
        list[Annotated[float, Field(ge=0, le=1e7)]] | None,
        Field(min_length=1, max_length=MAX_TRACE_ITEMS, description="request times (s)"),
    ] = None
    latency_slo_ms: Annotated[float | None, Field(gt=0, le=3_600_000, description="p99")] = None
    member: bool = True
    dataset_size: Annotated[int | None, Field(ge=1, le=10_000_000_000)] = None
    name: str | None = Field(
        default=None, description="name for the suggested deployment", json_schema_extra=NAME_SCHEMA
    )
    model_path: str | None = Field(default=None, description="model folder for the snippet")
    resources: Resources | None = None
    seed: Annotated[int, Field(ge=0, le=2**31)] = 0

    @model_validator(mode="after")
    def _check(self) -> AdviseRequest:
        given = [x is not None for x in (self.deployment, self.model, self.costs)]
        if sum(given) != 1:
            raise ValueError(
                "give exactly one of deployment (its history), model (a folder to probe) and costs"
            )
        if self.sample is not None and self.model is None:
            raise ValueError("sample: only with model (it is the probe's input)")
        for field in ("deployment", "name"):
            value = getattr(self, field)
            if value is not None and not NAME_RE.match(value):
                raise ValueError(f"{field}: not a deployment name")
        if self.dataset_size is None and self.trace is None and self.requests_per_hour is None:
            raise ValueError(
                "say how much traffic to expect: requests_per_hour (with pattern) or trace, "
                "or dataset_size for one-off predictions"
            )
        if self.trace is not None and self.requests_per_hour is not None:
            raise ValueError("give requests_per_hour or trace, not both")
        return self

    def need(self) -> Need:
        return Need(
            requests_per_hour=self.requests_per_hour,
            peak_concurrency=self.peak_concurrency,
            pattern=self.pattern,
            latency_slo_ms=self.latency_slo_ms,
            member=self.member,
            dataset_size=self.dataset_size,
        )

    def question(
        self, *, default_name: str, model: ModelRef, resources: Resources | None = None
    ) -> Question:
        trace = None
        if self.trace is not None:
            start = min(self.trace)
            trace = tuple(sorted(t - start for t in self.trace))
        return Question(
            need=self.need(),
            name=self.name or default_name,
            model=model,
            resources=self.resources or resources or Resources(),
            trace=trace,
            seed=self.seed,
        )

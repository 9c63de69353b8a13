"""The deployment spec: one frozen, validated pydantic model.

Errors name the field and the allowed range; unknown fields are rejected, so a typo in a YAML file
never silently falls back to a default.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_serializer,
    model_validator,
)

from modelplane.errors import InvalidSpec
from modelplane.spec.paths import JobFiles

NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
NAME_SCHEMA: dict[str, Any] = {"minLength": 1, "maxLength": 63, "pattern": NAME_RE.pattern}
"""A deployment's (and an OSCAR service's or volume's) name, as the OpenAPI document states it."""
_MEMORY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?|[kmgt]i?|B|b)?\s*$")
_UNITS = {
    None: 1,
    "B": 1,
    "b": 1,
    "K": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
}


MAX_MEMORY = 2**50
"""1 PiB: far above any node, low enough that every layer (SQLite included) holds it."""

MEMORY_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "integer", "minimum": 1, "maximum": MAX_MEMORY},
        {
            "type": "string",
            "maxLength": 32,
            "pattern": r"^\s*(?=[^1-9]*[1-9])\d+(\.\d+)?\s*([KMGTkmgt]i?|B|b)?\s*$",
        },
    ],
    "description": "bytes, or a size with a kubernetes-style suffix: 512Mi, 2Gi, 1G",
}
"""What the API accepts for a memory size, as the OpenAPI document states it."""
ENV_NAME_PATTERN = r"^(?!MODELPLANE_)[A-Za-z_][A-Za-z0-9_]*$"
"""An environment variable's name the API accepts, as the OpenAPI document states it."""


def parse_memory(value: Any) -> int:
    """Bytes from ``512Mi``, ``1Gi``, ``2G``, ``1048576``; kubernetes-style suffixes."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("memory must be a size such as 512Mi or 2Gi, or a number of bytes")
    if isinstance(value, str) and len(value) > 32:
        raise ValueError("memory must be a size such as 512Mi or 2Gi (at most 32 characters)")
    if isinstance(value, int | float):
        if not value > 0:  # NaN too
            raise ValueError("memory must be > 0")
        if value > MAX_MEMORY:
            raise ValueError(f"memory must be at most {MAX_MEMORY} bytes (1Pi)")
        return int(value)
    m = _MEMORY_RE.match(value)
    if not m:
        raise ValueError(f"{value!r} is not a size; use e.g. 512Mi, 2Gi or a number of bytes")
    unit = m.group(2)
    if unit and unit[0] in "kmgt":
        unit = unit[0].upper() + unit[1:]
    size = int(float(m.group(1)) * _UNITS[unit])
    if size <= 0:
        raise ValueError("memory must be > 0")
    if size > MAX_MEMORY:
        raise ValueError(f"memory must be at most {MAX_MEMORY} bytes (1Pi)")
    return size


class Mode(StrEnum):
    serverless = "serverless"
    dedicated = "dedicated"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelRef(_Frozen):
    """Where the model is and which loader adapts it."""

    path: str = Field(description="folder holding the model (with a modelplane.yaml for `python`)")
    loader: Literal["auto", "python", "deepaas", "oscar"] = Field(
        default="auto",
        description="python: modelplane.yaml + module:Class; deepaas: a DEEPaaS v2 module; "
        "oscar: an OSCAR-style script service; auto: recognise which",
    )
    entrypoint: str | None = Field(
        default=None, description="`module:Class`, overriding the one in modelplane.yaml"
    )

    @field_validator("entrypoint")
    @classmethod
    def _entrypoint(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^[A-Za-z_][\w.]*(:[A-Za-z_]\w*)?$", v):
            raise ValueError("entrypoint must look like `package.module:ClassName`")
        return v


class Resources(_Frozen):
    cpu: Annotated[float, Field(gt=0, le=1024, description="cores reserved per replica")] = 1.0
    memory: Annotated[
        int,
        Field(gt=0, le=MAX_MEMORY, description="bytes per replica; accepts 512Mi, 2Gi"),
        WithJsonSchema(MEMORY_SCHEMA),
    ] = 512 * 1024**2
    gpu: Annotated[int, Field(ge=0, le=64, description="GPUs per replica")] = 0
    custom: dict[str, float] = Field(
        default_factory=dict,
        description="custom resources per replica that cluster nodes declare (Ray: "
        '`ray start --resources`), e.g. {"tpu": 1}; ignored by the local backend',
    )

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, v: Any) -> int:
        return parse_memory(v)

    @field_validator("custom")
    @classmethod
    def _custom(cls, v: dict[str, float]) -> dict[str, float]:
        for name, amount in v.items():
            if not name or len(name) > 64 or name in ("CPU", "GPU", "memory"):
                raise ValueError(
                    f"custom resource name {name!r}: 1-64 characters, not CPU, GPU or memory"
                )
            if not 0 < amount <= 10_000:
                raise ValueError(f"custom resource {name!r}: amount must be in (0, 10000]")
        return v

    @model_serializer(mode="wrap")
    def _omit_empty_custom(self, handler: Any) -> Any:
        # Specs without custom resources serialise as before (stored rows, exports, hashes).
        out = handler(self)
        if isinstance(out, dict) and not out.get("custom"):
            out.pop("custom", None)
        return out


class Scale(_Frozen):
    """Replica counts. Dedicated deployments use ``replicas``; serverless use min/max."""

    replicas: Annotated[int, Field(ge=1, le=256)] = 1
    min: Annotated[int, Field(ge=0, le=256)] = 0
    max: Annotated[int, Field(ge=1, le=256)] = 4
    target_concurrency: Annotated[float, Field(gt=0, le=10_000)] = 4.0
    idle_timeout: Annotated[float, Field(gt=0, le=86_400, description="seconds")] = 300.0
    warm_template: bool = Field(
        default=True,
        description="keep a process with the model's code imported (no weights) to fork "
        "replicas from in milliseconds; false: nothing at all stays in memory at zero",
    )

    @model_validator(mode="after")
    def _bounds(self) -> Scale:
        if self.min > self.max:
            raise ValueError(f"scale.min ({self.min}) must be <= scale.max ({self.max})")
        return self


class DeploymentSpec(_Frozen):
    """What a user asks for. Everything else (replicas running, errors) is status."""

    name: str = Field(
        description="lowercase letters, digits and '-', at most 63 characters",
        json_schema_extra=NAME_SCHEMA,
    )
    model: ModelRef
    mode: Mode = Mode.serverless
    resources: Resources = Resources()
    scale: Scale = Scale()
    input: str | None = Field(default=None, description="bucket whose uploads become jobs")
    output: str | None = Field(default=None, description="bucket that receives job results")
    files: JobFiles | None = Field(
        default=None,
        description="OSCAR storage paths: jobs triggered under input.folder (its filters "
        "passed), files kept under their own names and written to every output path",
    )
    env: dict[str, str] = Field(
        default_factory=dict,
        description="environment variables of the replicas (the MODELPLANE_ prefix is reserved)",
        json_schema_extra={"propertyNames": {"pattern": ENV_NAME_PATTERN}},
    )
    network: Literal["allowed", "none"] = Field(
        default="allowed",
        description="replicas' network egress: allowed, or none (only a loopback of their own)",
    )
    description: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError(
                "name must be 1-63 lowercase letters, digits or '-', starting and ending "
                "with a letter or digit"
            )
        return v

    @field_validator("env")
    @classmethod
    def _env(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):  # ENV_NAME_PATTERN, in words
                raise ValueError(f"env variable name {key!r} is not a valid identifier")
            if key.startswith("MODELPLANE_"):
                raise ValueError(f"env variable {key!r}: the MODELPLANE_ prefix is reserved")
        return v

    @model_validator(mode="before")
    @classmethod
    def _buckets_of_files(cls, data: Any) -> Any:
        # With storage paths, the input and output buckets are theirs (given or not).
        if isinstance(data, dict) and isinstance(data.get("files"), dict):
            files = data["files"]
            data = dict(data)
            inp, outs = files.get("input"), files.get("outputs")
            if isinstance(inp, dict) and "bucket" in inp:
                data.setdefault("input", inp["bucket"])
            if isinstance(outs, list | tuple) and outs and isinstance(outs[0], dict):
                data.setdefault("output", outs[0].get("bucket"))
        return data

    @model_validator(mode="after")
    def _buckets(self) -> DeploymentSpec:
        if (self.input is None) != (self.output is None):
            raise ValueError("input and output buckets go together: set both or neither")
        if self.files is not None:
            if self.input != self.files.input.bucket or self.output != self.files.outputs[0].bucket:
                raise ValueError(
                    "input and output must be the buckets of files.input and files.outputs[0]"
                )
            return self  # same-bucket layouts are checked by the paths (JobFiles)
        if self.input is not None and self.input == self.output:
            raise ValueError(
                "input and output must be different buckets (results would become new jobs)"
            )
        return self

    @classmethod
    def parse(cls, data: Any) -> DeploymentSpec:
        """Validate user data, raising :class:`InvalidSpec` with every bad field named."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise spec_error(exc) from None


def spec_error(exc: ValidationError) -> InvalidSpec:
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "spec"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        problems.append({"field": loc, "message": msg})
    text = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
    return InvalidSpec(f"invalid deployment spec: {text}", problems=problems)


def load_spec(path: str | Path) -> DeploymentSpec:
    """Read a YAML or JSON spec file. Relative model paths are resolved against the file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InvalidSpec(f"{path}: not valid YAML: {exc}") from None
    except OSError as exc:
        raise InvalidSpec(f"cannot read spec file {path}: {exc.strerror}") from None
    if not isinstance(data, dict):
        raise InvalidSpec(f"{path}: a deployment spec is a mapping with at least name and model")
    model = data.get("model")
    if isinstance(model, dict) and isinstance(model.get("path"), str):
        mpath = Path(model["path"]).expanduser()
        if not mpath.is_absolute():
            model = {**model, "path": str((path.parent / mpath).resolve())}
            data = {**data, "model": model}
    return DeploymentSpec.parse(data)

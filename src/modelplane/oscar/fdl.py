"""OSCAR service definitions (the FDL's service fields) and how they map onto a deployment spec.

Pure: no I/O except :func:`read_fdl`, which reads an FDL file and the scripts it names. The
mapping (documented in docs/compatibility.md, "OSCAR"):

- ``name`` is the deployment's name; a service is always ``serverless``;
- ``cpu``/``memory``/``enable_gpu`` are the replica's ``resources`` (a GPU: one);
- ``synchronous.min_scale``/``max_scale`` are ``scale.min``/``scale.max`` (``max_scale`` 0 or
  absent: the platform's default, at least ``min_scale``);
- ``environment.variables`` (and ``environment.secrets``) are the deployment's ``env``;
- the first ``input`` path's bucket is the deployment's ``input`` bucket, the first ``output``
  path's bucket its ``output`` bucket; without them, ``{name}-in`` and ``{name}-out``, so that
  ``/job`` always works;
- ``script`` is run by the ``oscar`` loader; ``model`` (a modelplane extension) names a model
  folder instead, as a deployment's ``model`` does;
- ``image``, ``log_level``, ``visibility``, ``allowed_users`` and every other field are kept
  and given back as they were sent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from modelplane.errors import InvalidInput, ModelplaneError
from modelplane.spec import DeploymentSpec
from modelplane.spec.deployment import NAME_RE, ModelRef, parse_memory
from modelplane.storage import validate_bucket_name

DEFAULT_PROVIDER = "minio.default"
"""The platform's own buckets, as OSCAR calls its cluster's MinIO."""


class _Open(BaseModel):
    """OSCAR clients send many fields this platform has no use for: keep them, echo them back.
    ``null`` (Go's empty slice or map) means the default."""

    model_config = ConfigDict(extra="allow", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data


class StorageIO(_Open):
    storage_provider: str = DEFAULT_PROVIDER
    path: str
    suffix: list[str] = Field(default_factory=list)
    prefix: list[str] = Field(default_factory=list)

    @property
    def bucket(self) -> str:
        return self.path.strip("/").split("/", 1)[0]

    @property
    def folder(self) -> str:
        """The path inside the bucket, without slashes at either end ('' for none)."""
        parts = self.path.strip("/").split("/", 1)
        return parts[1].strip("/") if len(parts) > 1 else ""


class Synchronous(_Open):
    min_scale: int = Field(default=0, ge=0, le=256)
    max_scale: int = Field(default=0, ge=0, le=256)


class Environment(_Open):
    variables: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(default_factory=dict)

    @field_validator("variables", "secrets", mode="before")
    @classmethod
    def _strings(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): "" if x is None else str(x) for k, x in v.items()}
        return v


class OscarService(_Open):
    """One service as OSCAR's ``/system/services`` takes it (and the FDL lists it)."""

    name: str
    script: str | None = None
    model: ModelRef | None = Field(
        default=None, description="modelplane extension: a model folder instead of a script"
    )
    image: str = ""
    memory: str | None = None
    cpu: str | None = None
    enable_gpu: bool = False
    synchronous: Synchronous = Synchronous()
    input: list[StorageIO] = Field(default_factory=list)
    output: list[StorageIO] = Field(default_factory=list)
    environment: Environment = Environment()
    log_level: str = "INFO"
    visibility: Literal["private", "public", "restricted"] = "private"
    allowed_users: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError(
                "name must be 1-63 lowercase letters, digits or '-', starting and ending with a "
                "letter or digit"
            )
        return v

    @field_validator("cpu", mode="before")
    @classmethod
    def _cpu(cls, v: Any) -> Any:
        if isinstance(v, int | float) and not isinstance(v, bool):
            return str(v)
        return v

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("input", "output")
    @classmethod
    def _one_path(cls, v: list[StorageIO]) -> list[StorageIO]:
        if len(v) > 1:
            raise ValueError("modelplane takes one storage path here, not several")
        for io in v:
            if io.storage_provider.split(".", 1)[0] != "minio":
                raise ValueError(
                    f"storage provider {io.storage_provider!r}: only the platform's own "
                    f"buckets ({DEFAULT_PROVIDER}) can trigger and receive jobs"
                )
            try:
                validate_bucket_name(io.bucket)
            except InvalidInput as exc:
                raise ValueError(f"path {io.path!r}: {exc.message}") from None
        return v

    @model_validator(mode="after")
    def _what_runs(self) -> OscarService:
        if (self.script is None) == (self.model is None):
            raise ValueError("give either `script` (the shell script's text) or `model`")
        if self.input and self.output and self.input[0].bucket == self.output[0].bucket:
            raise ValueError(
                f"input and output use the same bucket {self.input[0].bucket!r}: on modelplane "
                "every object in an input bucket becomes a job, so results need a bucket of "
                f"their own (e.g. path: {self.input[0].bucket}-out/output)"
            )
        return self

    # -- the mapping ----------------------------------------------------------------------------
    @property
    def input_bucket(self) -> str:
        return self.input[0].bucket if self.input else f"{self.name}-in"

    @property
    def input_folder(self) -> str:
        return self.input[0].folder if self.input else ""

    @property
    def output_bucket(self) -> str:
        return self.output[0].bucket if self.output else f"{self.name}-out"

    @property
    def is_script(self) -> bool:
        return self.script is not None

    def to_spec(self, script_folder: Path, default_max: int = 4) -> DeploymentSpec:
        """The deployment that runs this service; a script lives in ``script_folder``."""
        if self.model is not None:
            model: dict[str, Any] = self.model.model_dump(exclude_none=True)
        else:
            model = {"path": str(script_folder), "loader": "oscar"}
        resources: dict[str, Any] = {"gpu": 1 if self.enable_gpu else 0}
        if self.cpu:
            try:
                resources["cpu"] = float(self.cpu)
            except ValueError:
                raise _invalid(f"cpu: {self.cpu!r} is not a number of cores") from None
        if self.memory:
            try:
                resources["memory"] = parse_memory(self.memory)
            except ValueError as exc:
                raise _invalid(f"memory: {exc}") from None
        sync = self.synchronous
        top = sync.max_scale or max(default_max, sync.min_scale, 1)
        env = {**self.environment.variables, **self.environment.secrets}
        data = {
            "name": self.name,
            "model": model,
            "mode": "serverless",
            "resources": resources,
            "scale": {"min": sync.min_scale, "max": top},
            "input": self.input_bucket,
            "output": self.output_bucket,
            "env": env,
            "description": f"OSCAR service (image {self.image or 'none'})",
        }
        try:
            return DeploymentSpec.parse(data)
        except ModelplaneError as exc:
            raise _invalid(exc.message) from None

    def definition(self) -> dict[str, Any]:
        """The definition as sent (extra fields included), for storing and echoing."""
        return self.model_dump(mode="json", exclude_none=True)


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(f"The service specification is not valid: {message}")


def service_from_dict(data: Any) -> OscarService:
    """Validate a service definition; errors are 400s naming every bad field, as OSCAR's are."""
    if not isinstance(data, dict):
        raise _invalid("a service definition is a JSON object")
    try:
        return OscarService.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "service"
            problems.append(f"{loc}: {err['msg'].removeprefix('Value error, ')}")
        raise _invalid("; ".join(problems)) from None


def parse_fdl(text: str, base: Path | None = None) -> list[dict[str, Any]]:
    """The service definitions of an FDL document, scripts read from files relative to ``base``.

    FDL: ``functions: {oscar: [{<cluster id>: {service…}}, …]}``, and optionally top-level
    ``storage_providers`` that each service gets. A ``model.path`` is resolved against ``base``.
    """
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"the FDL file is not valid YAML: {exc}") from None
    entries = (doc or {}).get("functions", {}).get("oscar") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not entries:
        raise InvalidInput("an FDL file lists its services under `functions: oscar:`")
    providers = doc.get("storage_providers")
    services: list[dict[str, Any]] = []
    for entry in entries:
        if not isinstance(entry, dict) or len(entry) != 1:
            raise InvalidInput("each item of `functions: oscar:` is `<cluster id>: {service}`")
        service = next(iter(entry.values()))
        if not isinstance(service, dict):
            raise InvalidInput("a service in an FDL file is a mapping")
        service = dict(service)
        if base is not None:
            _resolve_files(service, base)
        if providers and "storage_providers" not in service:
            service["storage_providers"] = providers
        services.append(service)
    return services


def _resolve_files(service: dict[str, Any], base: Path) -> None:
    script = service.get("script")
    if isinstance(script, str) and "\n" not in script:
        path = Path(script).expanduser()
        path = path if path.is_absolute() else base / path
        try:
            service["script"] = path.read_text()
        except OSError as exc:
            raise InvalidInput(
                f"service {service.get('name')!r}: cannot read script {path}: {exc.strerror}"
            ) from None
    model = service.get("model")
    if isinstance(model, dict) and isinstance(model.get("path"), str):
        mpath = Path(model["path"]).expanduser()
        if not mpath.is_absolute():
            service["model"] = {**model, "path": str((base / mpath).resolve())}


def read_fdl(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    return parse_fdl(text, path.parent)

"""OSCAR service definitions (the FDL's service fields) and how they map onto a deployment spec.

Pure: no I/O except :func:`read_fdl`, which reads an FDL file and the scripts it names. The
mapping (documented in docs/compatibility.md, "OSCAR"):

- ``name`` is the deployment's name; a service is always ``serverless``;
- ``cpu``/``memory``/``enable_gpu`` are the replica's ``resources`` (a GPU: one);
- ``synchronous.min_scale``/``max_scale`` are ``scale.min``/``scale.max`` (``max_scale`` 0 or
  absent: the platform's default, at least ``min_scale``);
- ``environment.variables`` (and ``environment.secrets``) are the deployment's ``env``;
- ``input`` (one path) and ``output`` (any number) are the deployment's storage paths
  (``files``, :mod:`modelplane.spec.paths`), with their ``suffix``/``prefix`` filters; without
  them, the buckets ``{name}-in`` and ``{name}-out``, so that ``/job`` always works;
- ``mount`` and ``volume`` are folders linked into the script's working folder
  (:mod:`modelplane.oscar.links`);
- ``script`` is run by the ``oscar`` loader; ``model`` (a modelplane extension) names a model
  folder instead, as a deployment's ``model`` does, and wins when both are given (an exported
  FDL carries both: the script for a real OSCAR cluster, the model for modelplane);
- the annotation :data:`DESCRIPTION_ANNOTATION` is the deployment's description;
- ``image``, ``log_level``, ``visibility``, ``allowed_users`` and the other fields with no effect
  here are kept and given back as they were sent; fields that would need what modelplane lacks
  (:data:`_REFUSED`, ``expose``) are refused by name, and keys are matched as OSCAR matches them
  (:mod:`modelplane.oscar.schema`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from modelplane.errors import InvalidInput, ModelplaneError
from modelplane.oscar.schema import canonical
from modelplane.spec import DeploymentSpec
from modelplane.spec.deployment import NAME_RE, ModelRef, parse_memory
from modelplane.spec.paths import JobFiles, StoragePath, find_cycle
from modelplane.storage import validate_bucket_name

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader, as OSCAR's Go YAML tooling: it accepts a tab after a value (a trailing
tab), which the pure-Python loader refuses."""

DESCRIPTION_ANNOTATION = "modelplane.dev/description"
"""The annotation that carries a deployment's description (an FDL has no description field)."""
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

    @field_validator("suffix", "prefix", mode="before")
    @classmethod
    def _listed(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @property
    def bucket(self) -> str:
        return self.path.strip("/").split("/", 1)[0]

    @property
    def folder(self) -> str:
        """The path inside the bucket, without slashes at either end ('' for none)."""
        parts = self.path.strip("/").split("/", 1)
        return parts[1].strip("/") if len(parts) > 1 else ""

    @property
    def ours(self) -> bool:
        """On the platform's own buckets (``minio``, ``minio.default``)?"""
        return self.storage_provider in ("minio", DEFAULT_PROVIDER)

    def storage_path(self) -> StoragePath:
        return StoragePath(
            bucket=self.bucket,
            folder=self.folder,
            prefix=tuple(self.prefix),
            suffix=tuple(self.suffix),
        )


class Synchronous(_Open):
    min_scale: int = Field(default=0, ge=0, le=256)
    max_scale: int = Field(default=0, ge=0, le=256)


def _go_string(value: Any) -> str:
    """A YAML scalar as OSCAR's tooling turns it into a string (``false``, not ``False``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


class Environment(_Open):
    variables: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(default_factory=dict)

    @field_validator("variables", "secrets", mode="before")
    @classmethod
    def _strings(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): _go_string(x) for k, x in v.items()}
        return v


class Volume(_Open):
    """A persistent folder of the service (OSCAR: a managed volume at ``mount_path``)."""

    name: str = ""
    size: str = ""
    mount_path: str
    lifecycle_policy: Literal["", "delete", "retain"] = ""

    @field_validator("mount_path")
    @classmethod
    def _absolute(cls, v: str) -> str:
        v = v.strip()
        parts = v.strip("/").split("/")
        if not v.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"{v!r} must be an absolute path such as /data")
        return v

    @model_validator(mode="after")
    def _named(self) -> Volume:
        if not self.size and not self.name:
            raise ValueError("volume.name is required when volume.size is not set")
        if self.name and not NAME_RE.match(self.name):
            raise ValueError(f"volume.name {self.name!r}: lowercase letters, digits and '-'")
        if self.lifecycle_policy and not self.size:
            raise ValueError("volume.lifecycle_policy is only valid when volume.size is set")
        return self

    def volume_name(self, service: str) -> str:
        return self.name or service


# Fields OSCAR defines that modelplane cannot honour: refused when set, with the reason.
_REFUSED = {
    "total_memory": "job quotas need Apache YuniKorn; set cpu/memory per replica instead",
    "total_cpu": "job quotas need Apache YuniKorn; set cpu/memory per replica instead",
    "ephemeral_storage_request": "replicas are processes: there is no pod storage to request",
    "enable_sgx": "no SGX device plugin here",
    "federation": "no federation: services run on this platform only",
    "replicas": "no delegation of jobs to other clusters",
    "delegation": "no delegation of jobs to other clusters",
    "clusters": "no delegation of jobs to other clusters",
    "kserve": "KServe inference services are not run here; deploy the model natively",
    "interlink_node_name": "no InterLink virtual nodes",
    "bucket_list": "only isolation_level SERVICE is supported",
    "file_stage_in": "the input object is always downloaded for the script",
}


def refused_fields(data: dict[str, Any]) -> list[str]:
    """Every field set to something modelplane cannot do, with the reason (pure)."""
    problems = [f"{k}: not supported ({why})" for k, why in _REFUSED.items() if data.get(k)]
    expose = data.get("expose")
    if isinstance(expose, dict) and expose.get("api_port"):
        problems.append(
            "expose: not supported (exposed long-running HTTP services are not run; serve the "
            "model as a deployment, which has an HTTP API of its own)"
        )
    level = data.get("isolation_level")
    if level and str(level).upper() != "SERVICE":
        problems.append(f"isolation_level: {level!r} is not supported (only SERVICE)")
    return problems


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
    mount: StorageIO | None = None
    volume: Volume | None = None

    @model_validator(mode="before")
    @classmethod
    def _decode(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        folded, unknown = canonical(data)
        problems = [f"{u}: not a field of an OSCAR service" for u in unknown]
        problems += refused_fields(folded)
        if problems:
            raise ValueError("; ".join(problems))
        mount = folded.get("mount")
        if isinstance(mount, dict) and not mount.get("path"):
            folded.pop("mount")  # Go's zero value: no mount
        folded.pop("token", None)  # the platform makes the service's token
        return folded

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

    @field_validator("input")
    @classmethod
    def _one_input(cls, v: list[StorageIO]) -> list[StorageIO]:
        if len(v) > 1:
            raise ValueError("modelplane watches one input path per service, not several")
        return _on_our_buckets(v, "input")

    @field_validator("output")
    @classmethod
    def _outputs(cls, v: list[StorageIO]) -> list[StorageIO]:
        return _on_our_buckets(v, "output")

    @field_validator("mount")
    @classmethod
    def _mount(cls, v: StorageIO | None) -> StorageIO | None:
        if v is not None:
            _on_our_buckets([v], "mount")
        return v

    @model_validator(mode="after")
    def _what_runs(self) -> OscarService:
        if self.script is None and self.model is None:
            raise ValueError("give either `script` (the shell script's text) or `model`")
        self.files()  # the paths make no loop
        return self

    # -- the mapping ----------------------------------------------------------------------------
    def files(self) -> JobFiles:
        """The service's storage paths; without input or output, ``<name>-in``/``<name>-out``."""
        try:
            # the default buckets' names can be too long for a bucket even when the name is not
            inp = (
                self.input[0].storage_path()
                if self.input
                else StoragePath(bucket=f"{self.name}-in")
            )
            outs = tuple(o.storage_path() for o in self.output) or (
                StoragePath(bucket=f"{self.name}-out"),
            )
            return JobFiles(input=inp, outputs=outs)
        except ValidationError as exc:
            raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None

    @property
    def input_bucket(self) -> str:
        return self.files().input.bucket

    @property
    def input_folder(self) -> str:
        return self.files().input.folder

    @property
    def output_bucket(self) -> str:
        return self.files().outputs[0].bucket

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
        notes = (self.model_extra or {}).get("annotations")
        notes = notes if isinstance(notes, dict) else {}
        data = {
            "name": self.name,
            "model": model,
            "mode": "serverless",
            "resources": resources,
            "scale": {"min": sync.min_scale, "max": top},
            "files": self.files().model_dump(),
            "env": env,
            "description": notes.get(
                DESCRIPTION_ANNOTATION, f"OSCAR service (image {self.image or 'none'})"
            ),
        }
        try:
            return DeploymentSpec.parse(data)
        except ModelplaneError as exc:
            raise _invalid(exc.message) from None

    def definition(self) -> dict[str, Any]:
        """The definition as sent (keys as OSCAR spells them, extra fields included)."""
        return self.model_dump(mode="json", exclude_none=True)


def _on_our_buckets(v: list[StorageIO], what: str) -> list[StorageIO]:
    for io in v:
        if not io.ours:
            raise ValueError(
                f"storage provider {io.storage_provider!r}: only the platform's own buckets "
                f"({DEFAULT_PROVIDER}) can be a service's {what}"
            )
        try:
            validate_bucket_name(io.bucket)
            io.storage_path()
        except InvalidInput as exc:
            raise ValueError(f"path {io.path!r}: {exc.message}") from None
        except ValidationError as exc:
            msg = exc.errors()[0]["msg"].removeprefix("Value error, ")
            raise ValueError(f"path {io.path!r}: {msg}") from None
    return v


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


def check_together(services: list[OscarService]) -> None:
    """Services of one FDL file must not trigger each other in a loop (checked before any is
    created; the platform checks them against the services it already has)."""
    graph = {}
    for service in services:
        files = service.files()
        graph[service.name] = (files.input, files.outputs)
    for service in services:
        loop = find_cycle(graph, service.name)
        if loop is not None:
            raise InvalidInput(
                f"these services would trigger each other forever: {' -> '.join(loop)} "
                "(an output path of each is the input path of the next)",
                hint="give one of them an output path outside the others' input paths",
                field="output",
            )


def parse_fdl(text: str, base: Path | None = None) -> list[dict[str, Any]]:
    """The service definitions of an FDL document, scripts read from files relative to ``base``.

    FDL: ``functions: {oscar: [{<cluster id>: {service…}}, …]}``, and optionally top-level
    ``storage_providers`` that each service gets. A ``model.path`` is resolved against ``base``.
    """
    try:
        doc = yaml.load(text, Loader=_LOADER)  # a safe loader, libyaml's if built
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
        service, _ = canonical(service)  # `Script:` names the script file too
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

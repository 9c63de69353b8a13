"""The DEEPaaS v2 loader: modules with get_metadata, warm, get_predict_args and predict.

Which module (conventions, documented in docs/compatibility.md):

- ``model.entrypoint`` names a ``deepaas.v2.model`` entry point, declared by the model folder
  (a ``*.dist-info``/``*.egg-info`` in it, its ``setup.cfg`` or ``pyproject.toml``) or by an
  installed package; otherwise it is ``module`` (the module is the model) or ``module:Class``
  (a class is instantiated with no arguments; any other attribute is used as it is).
- without an entrypoint, the folder's one declared entry point, else the one installed one.
- the model folder goes first on ``sys.path``; for an installed package any folder will do.

The model's DEEPaaS name (its ``/v2/models/{name}/`` path) is the entry point's name, else the
object's ``name`` attribute, else the top-level package name. Its webargs/marshmallow predict
arguments become the input JSON Schema; the fields are read by duck typing, so modelplane itself
never imports marshmallow.
"""

from __future__ import annotations

import configparser
import contextlib
import importlib
import importlib.machinery
import importlib.metadata
import importlib.util
import io
import os
import sys
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import orjson

from modelplane.errors import InvalidInput, InvalidSpec
from modelplane.model.contract import FileInput, FileOutput, LoadedModel, ModelMetadata

GROUP = "deepaas.v2.model"
ACCEPT = "accept"


class UploadedFile(NamedTuple):
    """A file argument as DEEPaaS hands it to ``predict``: ``filename`` is a temporary path.

    Used only where deepaas itself is not installed; a module whose environment has deepaas gets
    ``deepaas.model.v2.wrapper.UploadedFile``, so its own ``isinstance`` checks hold.
    """

    name: str | None = None
    filename: str | None = None
    content_type: str | None = None
    original_filename: str | None = None


def uploaded_file_class() -> Any:
    """deepaas's own ``UploadedFile`` when deepaas is importable here, else ours (same fields)."""
    if importlib.util.find_spec("deepaas") is None:
        return UploadedFile
    try:
        from deepaas.model.v2.wrapper import UploadedFile as Theirs
    except Exception:  # an installed but broken deepaas: the module will say so itself
        return UploadedFile
    return Theirs


class InvalidArguments(InvalidInput):
    """Arguments the module's own webargs fields reject: 422, with marshmallow's messages.

    On the native API the body is modelplane's error shape, the messages under ``details``; the
    DEEPaaS front answers the messages themselves, as DEEPaaS does (see
    :class:`modelplane.fronts.deepaas.DeepaasArgumentsError`).
    """

    status: ClassVar[int] = 422
    code: ClassVar[str] = "invalid_arguments"

    def __init__(self, messages: Any) -> None:
        super().__init__(
            f"invalid arguments: {_describe(messages)}",
            hint="see the model's arguments with `modelplane status NAME --json` (input_schema)",
        )
        self.messages = messages

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        body["details"] = {"arguments": self.messages}
        return body


def _describe(messages: Any, limit: int = 600) -> str:
    if isinstance(messages, dict):
        text = "; ".join(f"{k}: {_describe(v, limit)}" for k, v in messages.items())
    elif isinstance(messages, list):
        text = " ".join(_describe(m, limit) for m in messages)
    else:
        text = str(messages)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class Target:
    """Where a DEEPaaS model's code is: ``module[:attr]``, and its DEEPaaS name if known."""

    folder: Path
    module: str
    attr: str | None
    entry_point: str | None = None


@dataclass
class DeepaasCall:
    """What the DEEPaaS front asks of the model: ``predict`` with parsed kwargs, or metadata."""

    op: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    accept: str | None = None


@dataclass(frozen=True)
class DeepaasOutput:
    """A prediction for the DEEPaaS front: the module's return value and the accepted type."""

    value: Any
    accept: str | None


# -- finding the module -----------------------------------------------------------------------
def declared_entry_points(folder: Path) -> dict[str, str]:
    """``deepaas.v2.model`` entry points the folder declares, without importing anything."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions(path=[str(folder)]):
        for ep in dist.entry_points:
            if ep.group == GROUP:
                found.setdefault(ep.name, ep.value)
    cfg = folder / "setup.cfg"
    if cfg.is_file():
        parser = configparser.ConfigParser()
        try:
            parser.read(cfg)
            raw = parser.get("entry_points", GROUP, fallback="")
        except configparser.Error:
            raw = ""
        for line in raw.splitlines():
            name, sep, value = line.partition("=")
            if sep and name.strip():
                found.setdefault(name.strip(), value.strip())
    pyproject = folder / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text())
        except (tomllib.TOMLDecodeError, OSError):
            data = {}
        eps = data.get("project", {}).get("entry-points", {}).get(GROUP, {})
        if isinstance(eps, dict):
            for name, value in eps.items():
                found.setdefault(str(name), str(value))
    return found


def installed_entry_points() -> dict[str, str]:
    return {ep.name: ep.value for ep in importlib.metadata.entry_points(group=GROUP)}


def resolve(folder: str | Path, entrypoint: str | None) -> Target:
    """Which module or class serves the model; raises InvalidSpec with the next step."""
    path = Path(folder).expanduser().resolve()
    if not path.is_dir():
        raise InvalidSpec(f"model.path: {path} is not a folder", field="model.path")
    declared = declared_entry_points(path)
    if entrypoint is None:
        candidates = declared or installed_entry_points()
        if len(candidates) != 1:
            where = "declared in the folder" if declared else "installed"
            raise InvalidSpec(
                f"model.entrypoint: {len(candidates)} DEEPaaS models ({GROUP} entry points) "
                f"{where}: {', '.join(sorted(candidates)) or 'none'}",
                hint="give model.entrypoint: an entry point name, `module` or `module:Class`",
                field="model.entrypoint",
            )
        [(name, value)] = candidates.items()
        return _target(path, value, name)
    if entrypoint in declared:
        return _target(path, declared[entrypoint], entrypoint)
    installed = installed_entry_points()
    if entrypoint in installed:
        return _target(path, installed[entrypoint], entrypoint)
    return _target(path, entrypoint, None)


def _target(folder: Path, value: str, name: str | None) -> Target:
    module, _, attr = value.strip().partition(":")
    return Target(folder, module.strip(), attr.strip() or None, name)


def _on_path(folder: Path) -> None:
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


def import_target(target: Target) -> Any:
    """The module, or the attribute ``module:attr`` names (a class is instantiated)."""
    _on_path(target.folder)
    try:
        module = importlib.import_module(target.module)
    except ModuleNotFoundError as exc:
        if exc.name and target.module.startswith(exc.name):
            raise InvalidSpec(
                f"model.entrypoint: no module {target.module!r} in {target.folder} or installed",
                field="model.entrypoint",
            ) from None
        raise
    if target.attr is None:
        return module
    try:
        obj = getattr(module, target.attr)
    except AttributeError:
        raise InvalidSpec(
            f"model.entrypoint: module {target.module!r} has no {target.attr!r}",
            field="model.entrypoint",
        ) from None
    return obj() if isinstance(obj, type) else obj


def deepaas_name(target: Target, obj: Any) -> str:
    if target.entry_point:
        return target.entry_point
    name = getattr(obj, "name", None)
    if isinstance(name, str) and name:
        return name
    return target.module.split(".", 1)[0]


# -- webargs/marshmallow fields -> JSON Schema -------------------------------------------------
_TYPES: dict[str, dict[str, Any]] = {
    "Integer": {"type": "integer"},
    "Boolean": {"type": "boolean"},
    "Decimal": {"type": "number"},
    "Number": {"type": "number"},
    "DateTime": {"type": "string", "format": "date-time"},
    "NaiveDateTime": {"type": "string", "format": "date-time"},
    "Date": {"type": "string", "format": "date"},
    "Time": {"type": "string", "format": "time"},
    "TimeDelta": {"type": "number"},
    "UUID": {"type": "string", "format": "uuid"},
    "Email": {"type": "string", "format": "email"},
    "Url": {"type": "string", "format": "uri"},
    "IP": {"type": "string"},
    "String": {"type": "string"},
    "Dict": {"type": "object"},
    "Mapping": {"type": "object"},
}


def _class_names(obj: Any) -> list[str]:
    return [c.__name__ for c in type(obj).__mro__]


def is_missing(value: Any) -> bool:
    """marshmallow's ``missing`` sentinel, recognised without importing marshmallow."""
    return type(value).__name__ == "_Missing"


def field_default(f: Any) -> Any:
    """The field's load default (``missing`` before marshmallow 3.13)."""
    if hasattr(f, "load_default"):
        return f.load_default
    return getattr(f, "missing", None)


def is_file_field(f: Any) -> bool:
    meta = getattr(f, "metadata", None) or {}
    return meta.get("type") == "file"


def is_multiple(f: Any) -> bool:
    """A field that takes repeated values (webargs reads all of them)."""
    names = _class_names(f)
    return "List" in names or "Tuple" in names


def field_location(f: Any) -> str | None:
    """Where webargs 5 reads the argument: the field's ``location`` metadata, else anywhere."""
    meta = getattr(f, "metadata", None) or {}
    loc = meta.get("location")
    return str(loc) if loc else None


def _jsonable(value: Any) -> Any:
    try:
        return orjson.loads(orjson.dumps(value))
    except TypeError:
        return None


def field_schema(f: Any) -> dict[str, Any]:
    """JSON Schema of one marshmallow field: type, choices, default, bounds, description."""
    names = _class_names(f)
    meta: dict[str, Any] = dict(getattr(f, "metadata", None) or {})
    out: dict[str, Any] = {}
    if is_file_field(f):
        out = {"type": "string", "format": "binary"}
    elif "Nested" in names:
        nested = getattr(f, "nested", None)
        inner = object_schema(_nested_fields(nested))
        out = {"type": "array", "items": inner} if getattr(f, "many", False) else inner
    elif "List" in names or "Tuple" in names:
        inner_field = getattr(f, "inner", None)
        out = {"type": "array"}
        if inner_field is not None:
            out["items"] = field_schema(inner_field)
    else:
        for name in names:  # the most specific class first: Date is a DateTime
            if name in _TYPES:
                out = dict(_TYPES[name])
                break
    for v in getattr(f, "validators", None) or []:
        vnames = _class_names(v)
        if "OneOf" in vnames:
            out["enum"] = [_jsonable(c) for c in getattr(v, "choices", [])]
        elif "Range" in vnames:
            lo, hi = getattr(v, "min", None), getattr(v, "max", None)
            if lo is not None:
                key = "minimum" if getattr(v, "min_inclusive", True) else "exclusiveMinimum"
                out[key] = lo
            if hi is not None:
                key = "maximum" if getattr(v, "max_inclusive", True) else "exclusiveMaximum"
                out[key] = hi
        elif "Length" in vnames:
            prefix = "Items" if out.get("type") == "array" else "Length"
            if getattr(v, "equal", None) is not None:
                out[f"min{prefix}"] = out[f"max{prefix}"] = v.equal
            else:
                if getattr(v, "min", None) is not None:
                    out[f"min{prefix}"] = v.min
                if getattr(v, "max", None) is not None:
                    out[f"max{prefix}"] = v.max
        elif "Regexp" in vnames and getattr(v, "regex", None) is not None:
            out["pattern"] = v.regex.pattern
    if "enum" in meta and "enum" not in out and isinstance(meta["enum"], list):
        out["enum"] = _jsonable(meta["enum"])
    default = field_default(f)
    if default is not None and not is_missing(default) and not callable(default):
        value = _jsonable(default)
        if value is not None:
            out["default"] = value
    description = meta.get("description")
    if description:
        out["description"] = str(description)
    location = field_location(f)
    if location:
        out["x-deepaas-location"] = location
    if getattr(f, "allow_none", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


def _nested_fields(nested: Any) -> Mapping[str, Any]:
    if isinstance(nested, Mapping):
        return nested
    declared = getattr(nested, "_declared_fields", None)  # a Schema class or instance
    return declared if isinstance(declared, Mapping) else {}


def object_schema(args: Mapping[str, Any]) -> dict[str, Any]:
    """JSON Schema of a dict of marshmallow fields, as ``get_predict_args`` returns."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, f in args.items():
        key = getattr(f, "data_key", None) or name
        properties[key] = field_schema(f)
        if getattr(f, "required", False):
            required.append(key)
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    return out


# -- the adapter ------------------------------------------------------------------------------
def _call_optional(obj: Any, method: str, default: Any) -> Any:
    """DEEPaaS's rule: a missing or NotImplementedError method means ``default``."""
    fn = getattr(obj, method, None)
    if not callable(fn):
        return default
    try:
        return fn()
    except NotImplementedError:
        return default


class DeepaasModel:
    """Adapts a DEEPaaS v2 module to the model contract: ``load()`` warms, ``predict(inputs)``."""

    def __init__(self, obj: Any, name: str, target: Target) -> None:
        self.obj = obj
        self.name = name
        self.target = target
        if not callable(getattr(obj, "predict", None)):
            raise InvalidSpec(f"DEEPaaS model {name!r} ({target.module}) has no predict()")
        self.predict_args: dict[str, Any] = dict(_call_optional(obj, "get_predict_args", {}))
        self.train_args: dict[str, Any] = dict(_call_optional(obj, "get_train_args", {}))
        # As DEEPaaS does once per model: `accept` also takes */*, and defaults to its first
        # choice. (The choices list is extended in place, so OneOf's message keeps the original.)
        self.accept_choices: list[str] = []
        accept = self.predict_args.get(ACCEPT)
        if accept is not None:
            for v in getattr(accept, "validators", None) or []:
                choices = getattr(v, "choices", None)
                if "OneOf" in _class_names(v) and isinstance(choices, list):
                    choices.append("*/*")
                    accept.load_default = choices[0]
                    self.accept_choices = [str(c) for c in choices]
                    break
        self.response_schema = getattr(obj, "schema", None)
        self._schema_class: Any = None
        self._train_schema_class: Any = None
        self.uploaded_file = uploaded_file_class()

    # what the model contract asks
    def load(self) -> None:
        _call_optional(self.obj, "warm", None)

    def predict(self, inputs: Any) -> Any:
        if isinstance(inputs, DeepaasCall):
            if inputs.op == "predict":
                return DeepaasOutput(self._run(inputs.kwargs), inputs.accept)
            return self.get_metadata()
        # The native API: a JSON object or a multipart form, checked by the module's own
        # schema like a DEEPaaS request (required arguments, conversions, defaults).
        if not isinstance(inputs, dict):
            inputs = {"data": inputs}
        raw: dict[str, Any] = {}
        for name, f in self.predict_args.items():
            key = getattr(f, "data_key", None) or name
            if key in inputs:
                value = inputs[key]
                raw[key] = [value] if is_multiple(f) and not isinstance(value, list) else value
        kwargs = self.load_args(raw)
        accept = kwargs.get(ACCEPT)
        result = self._run(kwargs)
        if isinstance(accept, str) and accept not in ("application/json", "*/*"):
            if isinstance(result, FileOutput):
                return FileOutput(result.data, accept, result.filename)
            if isinstance(result, str):
                return FileOutput(result.encode(), accept)
            if isinstance(result, bytes | bytearray):
                return FileOutput(bytes(result), accept)
        return _plain(result)

    def load_args(self, raw: dict[str, Any], train: bool = False) -> dict[str, Any]:
        """The module's own marshmallow load of raw arguments; 422 with its messages."""
        from marshmallow import ValidationError  # only a DEEPaaS model's own dependency

        schema = self.train_schema_class() if train else self.schema_class()
        try:
            return dict(schema().load(raw))
        except ValidationError as exc:
            raise InvalidArguments(exc.messages) from None

    # DEEPaaS behaviour
    def get_metadata(self) -> dict[str, Any]:
        default = {
            "id": "0",
            "name": self.name,
            "description": (
                f"Could not load description from underlying model (loaded '{self.name}')"
            ),
        }
        meta = _call_optional(self.obj, "get_metadata", default)
        return dict(meta) if isinstance(meta, Mapping) else default

    def schema_class(self) -> Any:
        """The marshmallow schema of the predict arguments (webargs' ``dict2schema``)."""
        if self._schema_class is None:
            from marshmallow import Schema  # only a DEEPaaS model's own dependency

            self._schema_class = Schema.from_dict(dict(self.predict_args), name="PredictArgs")
        return self._schema_class

    def train_schema_class(self) -> Any:
        if self._train_schema_class is None:
            from marshmallow import Schema

            self._train_schema_class = Schema.from_dict(dict(self.train_args), name="TrainArgs")
        return self._train_schema_class

    def response_schema_class(self) -> Any:
        schema = self.response_schema
        if isinstance(schema, Mapping):
            from marshmallow import Schema

            self.response_schema = schema = Schema.from_dict(
                dict(schema), name="ModelPredictionResponse"
            )
        return schema

    def train(self, kwargs: dict[str, Any]) -> Any:
        """The module's ``train(**kwargs)``, files handed over as for ``predict``."""
        fn = getattr(self.obj, "train", None)
        if not callable(fn):
            raise NotImplementedError(f"model {self.name!r} does not implement train()")
        temps: list[str] = []
        try:
            return fn(**{k: self._file_arg(k, v, temps) for k, v in kwargs.items()})
        finally:
            for path in temps:
                with contextlib.suppress(OSError):
                    os.unlink(path)

    def _run(self, kwargs: dict[str, Any]) -> Any:
        temps: list[str] = []
        try:
            call = {k: self._file_arg(k, v, temps) for k, v in kwargs.items()}
            result = self.obj.predict(**call)
            if isinstance(result, io.IOBase) and hasattr(result, "read"):
                with result:
                    data = result.read()
                result = data.encode() if isinstance(data, str) else data
            return result
        finally:
            for path in temps:  # DEEPaaS leaves these behind; a replica lives long
                with contextlib.suppress(OSError):
                    os.unlink(path)

    def _file_arg(self, name: str, value: Any, temps: list[str]) -> Any:
        if isinstance(value, list):
            return [self._file_arg(name, v, temps) for v in value]
        if not isinstance(value, FileInput):
            return value
        fd, path = tempfile.mkstemp()
        with os.fdopen(fd, "wb") as f:
            f.write(value.data)
        temps.append(path)
        return self.uploaded_file(
            name=value.field or name,
            filename=path,
            content_type=value.content_type,
            original_filename=value.filename,
        )


def _plain(result: Any) -> Any:
    """A native-API result: bytes of a returned file stay a file output."""
    if isinstance(result, bytes | bytearray):
        return FileOutput(bytes(result))
    return result


def build_metadata(model: DeepaasModel) -> ModelMetadata:
    meta = model.get_metadata()
    output_schema = None
    schema = model.response_schema
    if isinstance(schema, Mapping):
        output_schema = object_schema(schema)
    elif schema is not None and isinstance(getattr(schema, "_declared_fields", None), Mapping):
        output_schema = object_schema(schema._declared_fields)
    extra = {
        "deepaas": {
            "name": model.name,
            "entry_point": model.target.entry_point,
            "module": model.target.module + (f":{model.target.attr}" if model.target.attr else ""),
            "metadata": _jsonable(meta),
            "accept": model.accept_choices,
            "train_args": object_schema(model.train_args) if model.train_args else None,
        }
    }
    return ModelMetadata(
        name=model.name,
        version=str(meta.get("version", "0")),
        description=str(meta.get("description", "")),
        input_schema=object_schema(model.predict_args),
        output_schema=output_schema,
        accepts=("*/*",),
        extra=extra,
    )


class DeepaasLoader:
    """A DEEPaaS v2 module, found by entry point or given as ``module`` / ``module:Class``."""

    def detect(self, folder: str | Path, entrypoint: str | None) -> bool:
        path = Path(folder)
        if not path.is_dir():
            return False
        declared = declared_entry_points(path.resolve())
        return bool(declared) and (entrypoint is None or entrypoint in declared)

    def check(self, folder: str | Path, entrypoint: str | None) -> None:
        target = resolve(folder, entrypoint)
        top = target.module.split(".", 1)[0]
        search = [str(target.folder), *sys.path]
        if importlib.machinery.PathFinder.find_spec(top, search) is None:
            raise InvalidSpec(
                f"model.entrypoint: no module {target.module!r} in {target.folder} or installed",
                field="model.entrypoint",
            )

    def prepare(self, folder: str | Path, entrypoint: str | None) -> None:
        target = resolve(folder, entrypoint)
        _on_path(target.folder)
        importlib.import_module(target.module)

    def load(self, folder: str | Path, entrypoint: str | None) -> LoadedModel:
        target = resolve(folder, entrypoint)
        obj = import_target(target)
        model = DeepaasModel(obj, deepaas_name(target, obj), target)
        return LoadedModel(model, build_metadata(model))


LOADER = DeepaasLoader()

__all__ = [
    "LOADER",
    "DeepaasCall",
    "DeepaasLoader",
    "DeepaasModel",
    "DeepaasOutput",
    "InvalidArguments",
    "UploadedFile",
    "field_schema",
    "object_schema",
    "resolve",
]

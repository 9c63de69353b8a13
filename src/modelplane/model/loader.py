"""The plain-Python loader: a folder with a ``modelplane.yaml`` naming ``module:Class``.

modelplane.yaml::

    name: digits
    version: "1.0"
    description: Handwritten digit classifier
    entrypoint: digits_model:DigitsModel
    accepts: [application/json, image/png]
    input_schema: {...JSON Schema...}
    output_schema: {...}
    batch: {max_size: 32, max_wait_ms: 5}    # optional: the class has predict_batch(list)
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from modelplane.errors import InvalidSpec
from modelplane.model.contract import BatchPolicy, LoadedModel, ModelMetadata

MANIFEST = "modelplane.yaml"
_KNOWN_KEYS = {
    "name",
    "version",
    "description",
    "entrypoint",
    "accepts",
    "input_schema",
    "output_schema",
    "extra",
    "batch",
}


@dataclass(frozen=True)
class Manifest:
    folder: Path
    entrypoint: str
    metadata: ModelMetadata


def read_manifest(folder: str | Path, entrypoint: str | None = None) -> Manifest:
    """Parse and check a model folder's manifest without importing any model code."""
    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise InvalidSpec(f"model.path: {folder} is not a folder", field="model.path")
    path = folder / MANIFEST
    if not path.is_file():
        raise InvalidSpec(
            f"model.path: {folder} has no {MANIFEST}",
            hint=f"add a {MANIFEST} with at least `entrypoint: module:Class`",
            field="model.path",
        )
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InvalidSpec(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidSpec(f"{path}: must be a mapping")
    unknown = set(data) - _KNOWN_KEYS
    if unknown:
        raise InvalidSpec(f"{path}: unknown field(s) {', '.join(sorted(unknown))}")
    entry = entrypoint or data.get("entrypoint")
    if not isinstance(entry, str) or ":" not in entry:
        raise InvalidSpec(f"{path}: entrypoint must be `module:Class`", field="entrypoint")
    accepts = data.get("accepts") or ["application/json"]
    if isinstance(accepts, str):
        accepts = [accepts]
    metadata = ModelMetadata(
        name=str(data.get("name") or folder.name),
        version=str(data.get("version", "0")),
        description=str(data.get("description", "")),
        input_schema=data.get("input_schema"),
        output_schema=data.get("output_schema"),
        accepts=tuple(str(a).lower() for a in accepts),
        extra=data.get("extra") or {},
        batch=_batch_policy(path, data.get("batch")),
    )
    return Manifest(folder=folder, entrypoint=entry, metadata=metadata)


def _batch_policy(path: Path, value: Any) -> BatchPolicy | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"max_size", "max_wait_ms"}:
        raise InvalidSpec(
            f"{path}: batch must be a mapping with max_size and optionally max_wait_ms",
            field="batch",
        )
    if "max_size" not in value:
        raise InvalidSpec(f"{path}: batch.max_size is required", field="batch.max_size")
    try:
        return BatchPolicy(value["max_size"], value.get("max_wait_ms", 0.0))
    except ValueError as exc:
        raise InvalidSpec(f"{path}: {exc}", field="batch") from None


def import_model_class(manifest: Manifest) -> Any:
    """Import the model's module (code, not weights); the forkable template stops here."""
    module_name, _, attr = manifest.entrypoint.partition(":")
    folder = str(manifest.folder)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise InvalidSpec(
            f"entrypoint {manifest.entrypoint!r}: module {module_name!r} has no {attr!r}"
        ) from None


class PythonLoader:
    """``modelplane.yaml`` + ``module:Class``: the native format."""

    def detect(self, folder: str | Path, entrypoint: str | None) -> bool:
        return (Path(folder) / MANIFEST).is_file()

    def check(self, folder: str | Path, entrypoint: str | None) -> None:
        read_manifest(folder, entrypoint)

    def prepare(self, folder: str | Path, entrypoint: str | None) -> None:
        import_model_class(read_manifest(folder, entrypoint))

    def load(self, folder: str | Path, entrypoint: str | None) -> LoadedModel:
        manifest = read_manifest(folder, entrypoint)
        cls = import_model_class(manifest)
        instance = cls() if isinstance(cls, type) else cls
        return LoadedModel(instance, manifest.metadata)


class Loader(Protocol):
    def detect(self, folder: str | Path, entrypoint: str | None) -> bool:
        """Whether this loader recognises the model (for ``loader: auto``)."""
        ...

    def check(self, folder: str | Path, entrypoint: str | None) -> None:
        """Cheap validation at deploy time, raising InvalidSpec; imports nothing heavy."""
        ...

    def prepare(self, folder: str | Path, entrypoint: str | None) -> None:
        """Import the model's code (what a warm template keeps), load no weights."""
        ...

    def load(self, folder: str | Path, entrypoint: str | None) -> LoadedModel:
        """Import and instantiate; the caller runs ``.load()`` when it is ready to pay."""
        ...


# Other formats' loaders live in their own modules, imported only when used.
_LOADERS: dict[str, str] = {
    "deepaas": "modelplane.model.deepaas",
    "oscar": "modelplane.model.oscar",
}


def get_loader(name: str, folder: str | Path, entrypoint: str | None) -> Loader:
    """The loader called ``name``; ``auto`` picks the first that recognises the model."""
    if name == "python":
        return PythonLoader()
    if name in _LOADERS:
        return importlib.import_module(_LOADERS[name]).LOADER
    if name != "auto":
        raise InvalidSpec(f"model.loader: unknown loader {name!r}", field="model.loader")
    python = PythonLoader()
    if python.detect(folder, entrypoint):
        return python
    for module in _LOADERS.values():
        try:
            candidate: Loader = importlib.import_module(module).LOADER
        except ImportError:
            continue
        if candidate.detect(folder, entrypoint):
            return candidate
    return python  # its check() explains what a model folder needs


def load_model(
    folder: str | Path, entrypoint: str | None = None, loader: str = "auto"
) -> LoadedModel:
    """Import and instantiate the model; the caller runs ``.load()`` when it is ready to pay."""
    return get_loader(loader, folder, entrypoint).load(folder, entrypoint)

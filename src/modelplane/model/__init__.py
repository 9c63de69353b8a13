"""The model contract, and loaders that adapt model folders to it."""

from __future__ import annotations

from modelplane.model.contract import (
    FileInput,
    FileOutput,
    FileSet,
    LoadedModel,
    Model,
    ModelMetadata,
    NamedInput,
)
from modelplane.model.loader import Manifest, load_model, read_manifest

__all__ = [
    "FileInput",
    "FileOutput",
    "FileSet",
    "LoadedModel",
    "Manifest",
    "Model",
    "ModelMetadata",
    "NamedInput",
    "load_model",
    "read_manifest",
]

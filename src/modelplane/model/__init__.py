"""The model contract, and loaders that adapt model folders to it."""

from __future__ import annotations

from modelplane.model.contract import FileInput, FileOutput, LoadedModel, Model, ModelMetadata
from modelplane.model.loader import Manifest, load_model, read_manifest

__all__ = [
    "FileInput",
    "FileOutput",
    "LoadedModel",
    "Manifest",
    "Model",
    "ModelMetadata",
    "load_model",
    "read_manifest",
]

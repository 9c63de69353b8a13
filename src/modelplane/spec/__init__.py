"""Declarative desired state. The YAML a user writes is the REST body is the row the store keeps."""

from __future__ import annotations

from modelplane.spec.deployment import (
    DeploymentSpec,
    Mode,
    ModelRef,
    Resources,
    Scale,
    load_spec,
    parse_memory,
)
from modelplane.spec.paths import JobFiles, StoragePath

__all__ = [
    "DeploymentSpec",
    "JobFiles",
    "Mode",
    "ModelRef",
    "Resources",
    "Scale",
    "StoragePath",
    "load_spec",
    "parse_memory",
]

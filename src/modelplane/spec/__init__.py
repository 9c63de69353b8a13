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

__all__ = ["DeploymentSpec", "Mode", "ModelRef", "Resources", "Scale", "load_spec", "parse_memory"]

"""Export a deployment as files that run it elsewhere: a container image, Compose, Kubernetes,
Knative, KServe, Nomad or an OSCAR FDL.

Render, then apply: :func:`render` is pure (spec and options in, files and warnings out) and
golden-file tested; :mod:`modelplane.backends.export.files` reads the model folder's facts before
and writes the folder (or a zip) after.
"""

from __future__ import annotations

from modelplane.backends.export.bundle import Bundle, ExportOptions, ModelFacts
from modelplane.backends.export.targets import TARGETS, Target, render, target

__all__ = ["TARGETS", "Bundle", "ExportOptions", "ModelFacts", "Target", "render", "target"]

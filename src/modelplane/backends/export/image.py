"""Target ``image``: a Dockerfile (and ``.dockerignore``) that serves the model with
``modelplane run``.

The image installs modelplane (a build argument, so a wheel or a checkout can stand in for the
released package), then the model's own requirements, copies the model folder to ``/model`` and
runs ``modelplane run`` on it: the native paths (``POST /predict``, ``GET /health``), the Open
Inference Protocol (``/v2/health/…``, ``/v2/models/{name}/infer``) and, for a DEEPaaS module,
DEEPaaS's own paths. Every other target runs this image.
"""

from __future__ import annotations

import json

from modelplane import __version__
from modelplane.backends.export.bundle import (
    CONTEXT_MODEL,
    HEALTH_PATH,
    MODEL_DIR,
    PORT,
    Bundle,
    ExportOptions,
    header,
    run_command,
    spec_yaml,
)
from modelplane.spec import DeploymentSpec

BASE_IMAGE = "python:3.11-slim"
PIP_CACHE = "/root/.cache/pip"
"""pip's cache (as root, before USER), mounted as a BuildKit cache during the install steps."""
HEALTHCHECK = (
    "import sys, urllib.request; "
    f"sys.exit(urllib.request.urlopen('http://127.0.0.1:{PORT}{HEALTH_PATH}', timeout=4)"
    ".status != 200)"
)
"""The health check as a Python one-liner: the slim base image has no curl."""


def env_value(value: str) -> str:
    """A Dockerfile ENV value: quoted, with ``$`` escaped so Docker does not substitute it."""
    return json.dumps(value).replace("$", "\\$")


def modelplane_package(spec: DeploymentSpec) -> str:
    """The pip requirement the image installs by default (with S3 support when jobs need it)."""
    extras = "[s3]" if spec.input else ""
    return f"modelplane{extras}=={__version__}"


def install_steps(spec: DeploymentSpec, options: ExportOptions) -> list[str]:
    """The shell commands of the image's RUN steps, in order (the image test replays them)."""
    facts = options.facts
    steps = ['pip install "${MODELPLANE_PACKAGE}"']
    if facts.requirements:
        steps.append(f"pip install -r {MODEL_DIR}/requirements.txt")
    if facts.installable:
        steps.append(f"pip install {MODEL_DIR}")
    return steps


def render(spec: DeploymentSpec, options: ExportOptions) -> Bundle:
    bundle = Bundle()
    lines = [
        "# syntax=docker/dockerfile:1",
        header(spec, "image").rstrip("\n"),
        f"FROM {BASE_IMAGE}",
        "# The modelplane to install: the released package by default; a wheel put into model/",
        "# works too: --build-arg MODELPLANE_PACKAGE=./modelplane-0.1.0-py3-none-any.whl",
        f'ARG MODELPLANE_PACKAGE="{modelplane_package(spec)}"',
        "ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1",
    ]
    if spec.env:
        pairs = " ".join(f"{key}={env_value(value)}" for key, value in sorted(spec.env.items()))
        lines.append(f"ENV {pairs}")
    lines += [
        f"WORKDIR {MODEL_DIR}",
        f"COPY {CONTEXT_MODEL}/ {MODEL_DIR}/",
    ]
    lines.append("# pip's cache is a build cache mount: rebuilds are fast, the image stays small.")
    lines += [
        f"RUN --mount=type=cache,target={PIP_CACHE} {step}" for step in install_steps(spec, options)
    ]
    lines += [
        "# An unprivileged user; the model folder stays read-only to it.",
        "RUN useradd --create-home --uid 10001 model",
        "USER 10001",
        "RUN mkdir -p /home/model/.modelplane",
        f"EXPOSE {PORT}",
        "HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \\",
        f"  CMD {json.dumps(['python', '-c', HEALTHCHECK])}",
        f"CMD {json.dumps(run_command(spec, options.facts))}",
    ]
    facts = options.facts
    if facts.loader == "oscar":
        bundle.warnings.append(
            f"OSCAR script service: the image is {BASE_IMAGE} with modelplane; any tool the "
            "script calls must be installed in it (add RUN apt-get install … to the Dockerfile)"
        )
    elif not (facts.requirements or facts.installable):
        bundle.warnings.append(
            "the model folder has no requirements.txt (nor pyproject.toml/setup.py): the image "
            "installs modelplane only; list the model's own packages in requirements.txt"
        )
    bundle.files["Dockerfile"] = "\n".join(lines) + "\n"
    bundle.files[".dockerignore"] = header(spec, "image") + "\n".join(
        ["**/__pycache__", "**/*.pyc", "**/.venv", "**/.git", "*.zip", ""]
    )
    bundle.files["spec.yaml"] = spec_yaml(spec)
    bundle.copies[CONTEXT_MODEL] = spec.model.path
    return bundle

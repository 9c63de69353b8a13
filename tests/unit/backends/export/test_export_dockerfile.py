"""The image target's Dockerfile, read back by a real Dockerfile parser (dockerfile-parse)."""

from __future__ import annotations

import io
import json

import pytest
from dockerfile_parse import DockerfileParser
from tests.unit.backends.export.cases import CASES

from modelplane.backends.export import render
from modelplane.backends.export.bundle import MODEL_DIR, PORT, run_command
from modelplane.backends.export.image import HEALTHCHECK, PIP_CACHE, install_steps


def parse(text: str) -> DockerfileParser:
    return DockerfileParser(fileobj=io.BytesIO(text.encode()), env_replace=False)


def instructions(parser: DockerfileParser, name: str) -> list[str]:
    return [i["value"] for i in parser.structure if i["instruction"] == name]


@pytest.mark.parametrize("case", list(CASES))
def test_the_dockerfile_installs_copies_and_runs_the_model(case: str) -> None:
    c = CASES[case]
    options = c.options()
    bundle = render(c.spec, "image", options)
    parser = parse(bundle.files["Dockerfile"])
    assert parser.baseimage == "python:3.11-slim"
    assert parser.args == {
        "MODELPLANE_PACKAGE": "modelplane[s3]==0.1.0" if c.spec.input else "modelplane==0.1.0"
    }
    assert instructions(parser, "COPY") == [f"model/ {MODEL_DIR}/"]
    assert instructions(parser, "WORKDIR") == [MODEL_DIR]
    runs = instructions(parser, "RUN")
    steps = install_steps(c.spec, options)
    mount = f"--mount=type=cache,target={PIP_CACHE} "
    assert runs[: len(steps)] == [mount + step for step in steps]
    if c.facts.requirements:
        assert f"pip install -r {MODEL_DIR}/requirements.txt" in steps
    assert bundle.files["Dockerfile"].startswith("# syntax=docker/dockerfile:1\n")
    assert instructions(parser, "USER") == ["10001"]
    assert instructions(parser, "EXPOSE") == [str(PORT)]
    assert json.loads(parser.cmd) == run_command(c.spec, c.facts)
    assert json.loads(parser.cmd)[:3] == ["modelplane", "run", MODEL_DIR]
    (check,) = instructions(parser, "HEALTHCHECK")
    flags, _, command = check.partition(" CMD ")
    assert "--interval=10s" in flags and "--start-period=60s" in flags
    assert json.loads(command) == ["python", "-c", HEALTHCHECK]
    assert bundle.copies == {"model": c.spec.model.path}


def test_spec_variables_reach_the_image_literally() -> None:
    c = CASES["gpu"]
    parser = parse(render(c.spec, "image", c.options()).files["Dockerfile"])
    envs = parser.envs
    # Docker removes the backslash of an escaped `\$` (no substitution); this parser keeps it.
    assert {k: v.replace("\\$", "$") for k, v in envs.items() if k in c.spec.env} == c.spec.env
    assert envs["PYTHONUNBUFFERED"] == "1"


def test_dockerignore_keeps_build_leftovers_out() -> None:
    c = CASES["dedicated"]
    ignore = render(c.spec, "image", c.options()).files[".dockerignore"]
    patterns = [line for line in ignore.splitlines() if line and not line.startswith("#")]
    assert {"**/__pycache__", "**/.venv", "**/.git"} <= set(patterns)

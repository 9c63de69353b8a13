"""The exported image's command line, run on this host exactly as its Dockerfile states it: no
container runtime exists here, so the test plays the builder. It reads the Dockerfile with a real
parser and replays it in a fresh virtualenv standing in for the base image's Python:

- ``ARG MODELPLANE_PACKAGE`` gets this checkout, as ``docker build --build-arg`` would give it;
- ``COPY model/ /model/`` copies the exported model folder to a folder standing in for ``/model``
  (every ``/model`` in the commands points there), ``WORKDIR`` is the current directory;
- every ``RUN pip …`` runs through ``/bin/sh -c`` with the ARG and ENV values, its BuildKit cache
  mount being the host's pip cache (so CI pays no download twice); the two user-management steps
  (``useradd``, the home folder) are the container's business and are the only ones not run;
- ``CMD`` runs with the Dockerfile's ENV, only the port changed to a free one (the machine is
  shared), then the ``HEALTHCHECK`` command, a native prediction, and the Open Inference Protocol
  through the official ``tritonclient``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from dockerfile_parse import DockerfileParser
from sklearn.datasets import load_digits

from modelplane.backends.export import ExportOptions, render
from modelplane.backends.export.bundle import MODEL_DIR, PORT
from modelplane.backends.export.files import inspect_model, write_folder
from modelplane.spec import DeploymentSpec
from tests.polling import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[3]
NOT_REPLAYED = {"useradd --create-home --uid 10001 model", "mkdir -p /home/model/.modelplane"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pip_cache() -> str:
    out = subprocess.run(
        [sys.executable, "-m", "pip", "cache", "dir"], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def at_model(text: str, model: Path) -> str:
    """A command's text with the image's /model pointing at the folder standing in for it."""
    return text.replace(MODEL_DIR, str(model))


def test_the_image_command_serves_predictions_and_health(tmp_path: Path) -> None:
    if sys.version_info[:2] != (3, 11):
        pytest.skip("the image's base is python:3.11-slim; this host's Python stands in for it")
    # A model folder as a user has it: the digits example and its requirements.
    source = tmp_path / "digits"
    shutil.copytree(ROOT / "examples" / "digits", source)
    (source / "requirements.txt").write_text("numpy\nscikit-learn\npillow\n")
    spec = DeploymentSpec.parse({"name": "digits-img", "model": {"path": str(source)}})
    bundle = render(spec, "image", ExportOptions(facts=inspect_model(spec)))
    out = tmp_path / "export"
    write_folder(bundle, out)

    parser = DockerfileParser(fileobj=(out / "Dockerfile").open("rb"), env_replace=False)
    assert parser.baseimage == "python:3.11-slim"
    steps = parser.structure
    model = tmp_path / "image" / "model"  # stands in for /model
    env = {k: v.replace("\\$", "$") for k, v in parser.envs.items()}
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    path = f"{venv / 'bin'}{os.pathsep}/usr/bin:/bin"
    build_env = {"PATH": path, "HOME": str(tmp_path / "home"), "PIP_CACHE_DIR": pip_cache()}
    build_env["MODELPLANE_PACKAGE"] = str(ROOT)  # --build-arg MODELPLANE_PACKAGE=<checkout>
    replayed = []
    for step in steps:
        kind, value = step["instruction"], step["value"]
        if kind == "COPY":
            src, dest = value.split()
            assert dest.rstrip("/") == MODEL_DIR
            shutil.copytree(out / src, model)
        elif kind == "WORKDIR":
            assert value == MODEL_DIR
        elif kind == "RUN":
            command = value
            if command.startswith("--mount=type=cache,"):
                command = command.split(" ", 1)[1]  # the cache mount is the host's pip cache
            if command in NOT_REPLAYED:
                continue
            assert command.startswith("pip install "), command
            subprocess.run(
                ["/bin/sh", "-c", at_model(command, model)],
                env={**build_env, **env},
                cwd=model,
                check=True,
                capture_output=True,
            )
            replayed.append(command)
    assert replayed == [
        'pip install "${MODELPLANE_PACKAGE}"',
        f"pip install -r {MODEL_DIR}/requirements.txt",
    ]

    port = free_port()
    cmd = [at_model(arg, model) for arg in json.loads(parser.cmd)]
    assert cmd[cmd.index("--port") + 1] == str(PORT)
    cmd[cmd.index("--port") + 1] = str(port)
    run_env = {**env, "PATH": path, "HOME": str(tmp_path / "home")}
    log = (tmp_path / "run.log").open("wb")
    proc = subprocess.Popen(cmd, env=run_env, cwd=model, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            assert proc.poll() is None, (tmp_path / "run.log").read_text()
            try:
                return httpx.get(f"{base}/health", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, timeout=120, interval=0.2, what="the model answering /health")
        (check,) = [s["value"] for s in steps if s["instruction"] == "HEALTHCHECK"]
        probe = json.loads(check.split(" CMD ", 1)[1])
        probe = [arg.replace(f":{PORT}/", f":{port}/") for arg in probe]
        assert subprocess.run(probe, env=run_env, cwd=model, timeout=30).returncode == 0

        digits = load_digits()
        sample, label = digits.images[0], int(digits.target[0])
        r = httpx.post(f"{base}/predict", json={"image": sample.tolist()}, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["digit"] == label

        import tritonclient.http as triton

        client = triton.InferenceServerClient(f"127.0.0.1:{port}")
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("digits-img")
        tensor = triton.InferInput("image", [1, 8, 8], "FP32")
        tensor.set_data_from_numpy(sample.reshape(1, 8, 8).astype(np.float32))
        result = client.infer("digits-img", [tensor])
        assert int(result.as_numpy("digit")[0]) == label
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()

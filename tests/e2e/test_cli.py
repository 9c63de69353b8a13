"""The CLI as a user runs it: `modelplane up` in a real process, commands in others."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import EXAMPLES, FIXTURE_MODELS
from tests.polling import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
CLI = [sys.executable, "-m", "modelplane.cli.main"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30) -> None:
    def answers() -> bool:
        try:
            httpx.get(url, timeout=1)
        except httpx.TransportError:
            return False
        return True

    wait_until(answers, timeout=timeout, what=f"{url} answering")


class Cli:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __call__(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*CLI, *args], env=self.env, capture_output=True, text=True, timeout=120
        )
        if ok:
            assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Cli, subprocess.Popen[str], Path]]:
    data = tmp_path_factory.mktemp("data")
    port = free_port()
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("MODELPLANE_TOKEN", None)
    up = subprocess.Popen(
        [*CLI, "up", "--data-dir", str(data), "--port", str(port), "--examples", str(EXAMPLES)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/api/v1/health")
        token = (data / "admin.token").read_text().strip()
        cli = Cli({**env, "MODELPLANE_URL": f"http://127.0.0.1:{port}", "MODELPLANE_TOKEN": token})
        yield cli, up, data
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGINT)
            try:
                up.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(up.pid, signal.SIGKILL)


def _wait_ls(cli: Cli, expect: str, timeout: float = 60) -> str:
    def listed() -> str:
        text = cli("ls").stdout
        return text if expect in text else ""

    return wait_until(listed, timeout=timeout, interval=0.2, what=f"`ls` showing {expect!r}")


def test_up_deploys_the_examples_and_the_cli_drives_them(platform) -> None:  # type: ignore[no-untyped-def]
    cli, _, _ = platform
    text = _wait_ls(cli, "running")
    assert "echo" in text and "digits" in text
    out = cli("predict", "echo", "--json", '{"hello": [1, 2]}').stdout
    assert json.loads(out) == {"hello": [1, 2]}
    grid = json.dumps({"image": [[0, 0, 5, 13, 9, 1, 0, 0]] * 8})
    out = cli("predict", "digits", "--json", grid).stdout
    assert 0 <= json.loads(out)["digit"] <= 9


def test_deploy_status_logs_rm(platform) -> None:  # type: ignore[no-untyped-def]
    cli, _, _ = platform
    out = cli(
        "deploy",
        str(FIXTURE_MODELS / "faulty"),
        "--name",
        "faulty",
        "--mode",
        "dedicated",
        "--replicas",
        "2",
        "--cpu",
        "0.5",
        "--memory",
        "256Mi",
    ).stdout
    assert "ready: 2/2" in out
    status = cli("status", "faulty").stdout
    assert "replicas ready 2/2" in status and "memory 256 MiB" in status
    cli("predict", "faulty", "--json", '{"print": "cli-log-marker"}')
    wait_until(
        lambda: "cli-log-marker" in cli("logs", "faulty").stdout,
        timeout=10,
        interval=0.1,
        what="the model's output reaching the logs",
    )
    data = json.loads(cli("status", "faulty", "--json").stdout)
    assert data["status"]["requests"] == 1
    cli("rm", "faulty")
    assert "faulty" not in cli("ls").stdout


def test_deploy_from_a_spec_file_and_update(platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli, _, _ = platform
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: spec-echo\nmodel:\n  path: {EXAMPLES / 'echo'}\nmode: dedicated\n")
    assert "ready: 1/1" in cli("deploy", str(spec)).stdout
    assert "ready: 2/2" in cli("deploy", str(spec), "--replicas", "2", "--update").stdout
    cli("rm", "spec-echo")


def test_errors_are_messages_with_a_next_step(platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli, _, _ = platform
    r = cli("predict", "nope", "--json", "{}", ok=False)
    assert r.returncode == 1
    assert "deployment 'nope' does not exist" in r.stderr and "modelplane ls" in r.stderr
    assert "Traceback" not in r.stderr
    r = cli("predict", "echo", "--json", "{not json", ok=False)
    assert r.returncode == 1 and "not valid JSON" in r.stderr
    r = cli("deploy", str(tmp_path), ok=False)
    assert r.returncode == 1 and "modelplane.yaml" in r.stderr
    r = cli("deploy", str(EXAMPLES / "echo"), "--replicas", "0", ok=False)
    assert r.returncode == 1 and "scale.replicas" in r.stderr
    r = cli("ls", "--url", "http://127.0.0.1:9", ok=False)
    assert r.returncode == 1 and "cannot reach the platform" in r.stderr
    r = cli("ls", "--token", "mp_wrong", ok=False)
    assert r.returncode == 1 and "bearer token" in r.stderr


def test_restart_brings_deployments_back(platform) -> None:  # type: ignore[no-untyped-def]
    cli, up, data = platform
    port = cli.env["MODELPLANE_URL"].rsplit(":", 1)[1]
    os.killpg(up.pid, signal.SIGINT)
    assert up.wait(timeout=20) == 0
    again = subprocess.Popen(
        [*CLI, "up", "--data-dir", str(data), "--port", port],
        env=cli.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/api/v1/health")
        text = _wait_ls(cli, "2/2")
        assert "echo" in text and "digits" in text
        assert json.loads(cli("predict", "echo", "--json", "[1]").stdout) == [1]
    finally:
        os.killpg(again.pid, signal.SIGINT)
        again.wait(timeout=20)


def test_run_serves_one_model_in_process(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "run", str(EXAMPLES / "digits"), "--port", str(port)],
        env={**os.environ, "MODELPLANE_CACHE_DIR": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/health")
        meta = httpx.get(f"http://127.0.0.1:{port}/").json()
        assert meta["name"] == "digits" and "image" in meta["input_schema"]["properties"]
        grid = [[0, 0, 5, 13, 9, 1, 0, 0]] * 8
        r = httpx.post(f"http://127.0.0.1:{port}/predict", json={"image": grid})
        assert r.status_code == 200 and 0 <= r.json()["digit"] <= 9
        r = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/deployments/digits/predict", json={"image": grid}
        )
        assert r.status_code == 200
        r = httpx.post(f"http://127.0.0.1:{port}/predict", json={"image": [[1]]})
        assert r.status_code == 400
        assert httpx.get(f"http://127.0.0.1:{port}/nope").status_code == 404
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=10)

"""Users, tokens and resources through the CLI, against `modelplane up --gpus 2` in a process."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_cli import CLI, Cli, free_port, wait_http

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cli, str]]:
    data: Path = tmp_path_factory.mktemp("data")
    port = free_port()
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("MODELPLANE_TOKEN", None)
    up = subprocess.Popen(
        [
            *CLI,
            "up",
            "--data-dir",
            str(data),
            "--port",
            str(port),
            "--gpus",
            "2",
            "--rate-limit",
            "1000",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/api/v1/health")
        token = (data / "admin.token").read_text().strip()
        url = f"http://127.0.0.1:{port}"
        yield Cli({**env, "MODELPLANE_URL": url, "MODELPLANE_TOKEN": token}), url
    finally:
        os.killpg(up.pid, signal.SIGINT)
        try:
            out, _ = up.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
        else:
            assert "GPUs: 0, 1" in out and "rate limit: 1000 requests per second" in out


def test_users_and_tokens_from_the_cli(admin: tuple[Cli, str]) -> None:
    cli, _ = admin
    out = cli("users", "add", "ann", "--quota-cpu", "2", "--quota-memory", "1Gi").stdout
    assert "user ann added" in out and "cpu 2.0, memory 1 GiB" in out
    out = cli("tokens", "create", "--user", "ann", "--name", "laptop", "--expires-in", "7").stdout
    token = next(line for line in out.splitlines() if line.startswith("mp_"))
    assert "expires at" in out
    ann = Cli({**cli.env, "MODELPLANE_TOKEN": token})
    assert "no deployments yet" in ann("ls").stdout
    listed = ann("users", "ls").stdout
    assert "ann" in listed and "admin" not in listed.replace("ADMIN", "")
    r = ann("users", "add", "eve", ok=False)
    assert r.returncode == 1 and "only an admin may add users" in r.stderr
    rows = cli("tokens", "ls", "--user", "ann").stdout
    assert "laptop" in rows
    token_id = next(line.split("│")[1].strip() for line in rows.splitlines() if "laptop" in line)
    assert "revoked" in cli("tokens", "revoke", token_id).stdout
    r = ann("ls", ok=False)
    assert r.returncode == 1 and "valid bearer token" in r.stderr
    assert "removed user ann" in cli("users", "rm", "ann").stdout


def test_resources_shows_the_declared_gpus(admin: tuple[Cli, str]) -> None:
    cli, _ = admin
    out = cli("resources").stdout
    assert "gpus 0:GPU, 1:GPU" in out and "declared gpus" in out

"""The CLI with real models: `predict` with files and fields, `deploy` of a model with
requirements, `envs ls|prune`; against a real platform."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import FIXTURE_MODELS
from tests.e2e.test_cli import Cli, platform  # noqa: F401 - the module's platform fixture
from tests.polling import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
pytest.importorskip("marshmallow", reason="the DEEPaaS fixture module needs webargs/marshmallow")


def test_files_and_fields_are_repeatable_and_required_ones_are_named(
    platform: tuple[Cli, object, Path],  # noqa: F811
    tmp_path: Path,
) -> None:
    cli = platform[0]
    cli("deploy", str(FIXTURE_MODELS / "deepaas_files"), "--name", "files", "--mode", "dedicated")
    text = tmp_path / "notes.txt"
    text.write_text("one\ntwo\nthree\n")
    r = cli("predict", "files", "--field", "repeat=2", ok=False)
    assert r.returncode != 0
    assert "files requires upload" in r.stdout + r.stderr
    assert "--file upload=PATH" in r.stdout + r.stderr
    r = cli(
        "predict",
        "files",
        "--file",
        f"upload={text}",
        "--field",
        "repeat=2",
        "--field",
        "tags=a",
        "--field",
        "tags=b",
        "--field",
        "mode=lines",
    )
    body = json.loads(r.stdout)
    assert body["value"] == 6 and body["tags"] == ["a", "b"]
    assert body["name"] == "upload" and body["original_filename"] == "notes.txt"
    r = cli("predict", "files", "--file", f"upload={text}", "--field", "repeat=9", ok=False)
    assert r.returncode != 0
    assert "invalid arguments: repeat: Must be greater than or equal to 1" in r.stdout + r.stderr
    r = cli("predict", "files", "--file", f"upload={tmp_path / 'nope.txt'}", ok=False)
    assert "no such file" in r.stdout + r.stderr


def test_deploy_builds_the_models_environment_and_envs_lists_and_prunes_it(
    platform: tuple[Cli, object, Path],  # noqa: F811
) -> None:
    cli = platform[0]
    r = cli("deploy", str(FIXTURE_MODELS / "pinned"), "--mode", "dedicated", "--timeout", "300")
    assert "ready: 1/1 replicas (environment " in r.stdout
    assert json.loads(cli("predict", "pinned", "--json", "{}").stdout)["httpx"] == "0.23.0"
    status = cli("status", "pinned").stdout
    assert "environment " in status and ": ready" in status
    listing = cli("envs", "ls").stdout
    assert "pinned" in listing and "uv" in listing and "requirements.txt" in listing
    assert "nothing to prune" in cli("envs", "prune").stdout
    cli("rm", "pinned")
    wait_until(  # the removal reaches the reconciler on its next pass
        lambda: "removed 1 environment(s)" in cli("envs", "prune").stdout,
        timeout=20,
        interval=0.2,
        what="`envs prune` removing the environment",
    )
    assert "no model environments" in cli("envs", "ls").stdout

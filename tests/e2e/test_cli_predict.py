"""``modelplane predict`` with several files and form fields, against a real platform."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import FIXTURE_MODELS
from tests.e2e.test_cli import Cli, platform  # noqa: F401 - the module's platform fixture

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

"""``modelplane export`` on a spec file or a model folder (no platform needed), and the write
step: the folder (files + model copy) and the zip hold the same things."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from tests.unit.backends.export.cases import CASES, ROOT
from typer.testing import CliRunner

from modelplane.backends.export import TARGETS, render
from modelplane.backends.export.files import zip_bundle
from modelplane.cli.main import app
from modelplane.errors import PayloadTooLarge

runner = CliRunner()


def test_list_targets_names_every_target() -> None:
    result = runner.invoke(app, ["export", "--list-targets"])
    assert result.exit_code == 0, result.output
    for name in TARGETS:
        assert name in result.output


def test_export_a_spec_file_writes_the_folder_and_prints_the_warnings(tmp_path: Path) -> None:
    out = tmp_path / "k8s"
    spec = ROOT / "examples" / "echo" / "deployment.yaml"
    result = runner.invoke(app, ["export", str(spec), "--target", "kubernetes", "--out", str(out)])
    assert result.exit_code == 0, result.output
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"kubernetes.yaml", "Dockerfile", ".dockerignore", "README.md", "spec.yaml"} <= names
    assert {"model/echo_model.py", "model/modelplane.yaml"} <= names
    assert "warning:" in result.output and "no --image given" in result.output
    assert "no --image given" in (out / "README.md").read_text()


def test_export_a_model_folder_with_an_image(tmp_path: Path) -> None:
    out = tmp_path / "kn"
    folder = ROOT / "examples" / "echo"
    result = runner.invoke(
        app,
        ["export", str(folder), "-t", "knative", "--out", str(out), "--image", "r.example/e:2"],
    )
    assert result.exit_code == 0, result.output
    assert "image: r.example/e:2" in (out / "knative.yaml").read_text()
    assert "no --image given" not in result.output


def test_an_unknown_target_and_a_full_folder_are_clear_errors(tmp_path: Path) -> None:
    folder = str(ROOT / "examples" / "echo")
    result = runner.invoke(app, ["export", folder, "--target", "helm"])
    assert result.exit_code == 1
    assert "unknown export target 'helm'" in result.output and "--list-targets" in result.output
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("mine")
    result = runner.invoke(app, ["export", folder, "-t", "image", "--out", str(tmp_path / "full")])
    assert result.exit_code == 1 and "not empty" in result.output
    assert (tmp_path / "full" / "x").read_text() == "mine"
    result = runner.invoke(app, ["export", "/no/such/thing.yaml", "-t", "image"])
    assert result.exit_code == 1 and "neither a spec file" in result.output


def test_the_zip_holds_the_files_and_the_model_under_one_folder() -> None:
    c = CASES["dedicated"]
    spec = c.spec.model_copy(
        update={"model": c.spec.model.model_copy(update={"path": str(ROOT / "examples/echo")})}
    )
    bundle = render(spec, "oscar", c.options())
    with zipfile.ZipFile(io.BytesIO(zip_bundle(bundle, "echo-oscar"))) as archive:
        names = set(archive.namelist())
        assert {f"echo-oscar/{rel}" for rel in bundle.files} <= names
        assert "echo-oscar/model/echo_model.py" in names
        assert archive.getinfo("echo-oscar/script.sh").external_attr >> 16 == 0o755
        assert archive.read("echo-oscar/fdl.yaml").decode() == bundle.files["fdl.yaml"]


def test_a_model_too_big_for_a_zip_is_a_413_with_the_way_out(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"x" * 2048)
    (tmp_path / "modelplane.yaml").write_text("entrypoint: m:M\n")
    c = CASES["dedicated"]
    spec = c.spec.model_copy(
        update={"model": c.spec.model.model_copy(update={"path": str(tmp_path)})}
    )
    bundle = render(spec, "image", c.options())
    with pytest.raises(PayloadTooLarge) as info:
        zip_bundle(bundle, "big", limit=1024)
    assert info.value.status == 413 and "modelplane export" in (info.value.hint or "")
    assert len(zip_bundle(bundle, "big", limit=4096)) > 0

"""The OSCAR target: an FDL that a real OSCAR cluster takes (image + script, resources, scale,
MinIO paths) and that ``import-fdl`` turns back into the same deployment. The import side here
is the code ``modelplane import-fdl`` runs: read_fdl, then the service's own validation and
mapping (the platform's /system/services does the same)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tests.unit.backends.export.cases import CASES, ROOT

from modelplane.backends.export import ExportOptions, render
from modelplane.backends.export.files import inspect_model, write_folder
from modelplane.oscar.fdl import read_fdl, service_from_dict
from modelplane.spec import DeploymentSpec, Scale
from modelplane.spec.paths import JobFiles, StoragePath


def export_and_import(spec: DeploymentSpec, out: Path) -> tuple[DeploymentSpec, list[str]]:
    bundle = render(
        spec, "oscar", ExportOptions(image="reg.example/m:1", facts=inspect_model(spec))
    )
    write_folder(bundle, out)
    (service,) = read_fdl(out / "fdl.yaml")
    return service_from_dict(service).to_spec(out / "scripts"), bundle.warnings


def on_disk(case: str) -> DeploymentSpec:
    spec = CASES[case].spec
    path = str(ROOT / spec.model.path)
    return spec.model_copy(update={"model": spec.model.model_copy(update={"path": path})})


def test_a_serverless_deployment_with_storage_paths_comes_back_equal(tmp_path: Path) -> None:
    files = JobFiles(
        input=StoragePath(bucket="digits-in", folder="input", suffix=(".json", ".png")),
        outputs=(
            StoragePath(bucket="digits-out", folder="results"),
            StoragePath(bucket="digits-out", folder="pngs", suffix=(".png",)),
        ),
    )
    spec = DeploymentSpec.parse(
        {**on_disk("buckets").model_dump(mode="json"), "files": files.model_dump(mode="json")}
    )
    back, warnings = export_and_import(spec, tmp_path / "out")
    assert back == spec
    assert warnings == [w for w in warnings if "requirements.txt" in w]  # nothing else was lost


def test_bucket_to_bucket_jobs_come_back_as_whole_bucket_storage_paths(tmp_path: Path) -> None:
    spec = on_disk("buckets")
    back, warnings = export_and_import(spec, tmp_path / "out")
    assert back.files == JobFiles(
        input=StoragePath(bucket="digits-in"), outputs=(StoragePath(bucket="digits-out"),)
    )
    assert back.model_copy(update={"files": None}) == spec
    assert any("under their own names" in w for w in warnings)


def test_a_deepaas_module_comes_back_equal(tmp_path: Path) -> None:
    files = {"input": {"bucket": "dp-in"}, "outputs": [{"bucket": "dp-out"}]}
    base = on_disk("deepaas").model_dump(mode="json", exclude={"input", "output"})
    spec = DeploymentSpec.parse({**base, "files": files})
    back, warnings = export_and_import(spec, tmp_path / "out")
    # OSCAR has no concurrency target: the one setting lost, and the one warned about
    assert back == spec.model_copy(update={"scale": Scale(min=0, max=2)})
    assert any("scale.target_concurrency 1.5" in w for w in warnings)


def test_an_oscar_script_service_keeps_its_own_script(tmp_path: Path) -> None:
    folder = tmp_path / "svc"
    folder.mkdir()
    script = '#!/bin/sh\ntr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/out.txt"\n'
    (folder / "script.sh").write_text(script)
    spec = DeploymentSpec.parse(
        {
            "name": "upper",
            "model": {"path": str(folder), "loader": "oscar"},
            "files": {"input": {"bucket": "upper-in"}, "outputs": [{"bucket": "upper-out"}]},
        }
    )
    back, warnings = export_and_import(spec, tmp_path / "out")
    assert back == spec
    assert (tmp_path / "out" / "script.sh").read_text() == script
    assert any("tool the script calls" in w for w in warnings)


def test_what_oscar_cannot_hold_is_exactly_what_the_warnings_name(tmp_path: Path) -> None:
    spec = on_disk("gpu")  # dedicated, 3 replicas, no buckets
    back, warnings = export_and_import(spec, tmp_path / "out")
    assert back.mode == "serverless" and (back.scale.min, back.scale.max) == (3, 3)
    assert (back.input, back.output) == ("digits-gpu-in", "digits-gpu-out")
    assert (
        back.model_copy(
            update={
                "mode": spec.mode,
                "scale": spec.scale,
                "input": None,
                "output": None,
                "files": None,
            }
        )
        == spec
    )
    assert any("mode dedicated" in w for w in warnings)
    assert any("no buckets" in w for w in warnings)


def test_the_fdl_carries_what_a_real_oscar_cluster_reads(tmp_path: Path) -> None:
    spec = on_disk("gpu")
    bundle = render(
        spec, "oscar", ExportOptions(image="reg.example/m:1", facts=inspect_model(spec))
    )
    doc = yaml.safe_load(bundle.files["fdl.yaml"])
    ((cluster, service),) = doc["functions"]["oscar"][0].items()
    assert cluster == "oscar-cluster"
    assert service["image"] == "reg.example/m:1" and service["script"] == "script.sh"
    assert (service["cpu"], service["memory"], service["enable_gpu"]) == ("2", "2Gi", True)
    assert service["synchronous"] == {"min_scale": 3, "max_scale": 3}
    assert service["environment"]["variables"] == spec.env
    assert service["input"] == [{"storage_provider": "minio.default", "path": "digits-gpu-in"}]
    script = bundle.files["script.sh"]
    assert script.startswith("#!/bin/sh\n")
    assert '"$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR"' in script.splitlines()[-1]


@pytest.mark.parametrize("name", ["digits.json"])
def test_the_oneshot_script_answers_one_file_as_oscar_runs_it(tmp_path: Path, name: str) -> None:
    from modelplane.backends.export import oneshot

    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    source = tmp_path / "in" / name
    source.write_text('{"hello": [1, 2]}')
    code = oneshot.main(
        [str(ROOT / "examples" / "echo"), str(source), str(tmp_path / "out"), "--loader", "python"]
    )
    assert code == 0
    assert (tmp_path / "out" / "digits.json").read_text().replace(" ", "") == '{"hello":[1,2]}'

"""A DEEPaaS module deployed on the platform, called under ``/deepaas/{deployment}/``."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.integration.conftest import Harness

pytestmark = pytest.mark.integration
pytest.importorskip("webargs", reason="DEEPaaS modules need webargs: pip install deepaas==2.6.0")


async def test_deployment_serves_deepaas_paths_under_its_prefix(
    harness: Harness, fixture_models: Path
) -> None:
    folder = fixture_models / "deepaas_files"
    await harness.deploy(
        "dfiles", folder, model={"path": str(folder), "loader": "deepaas", "entrypoint": None}
    )
    status = await harness.wait_ready("dfiles")
    assert status["model"]["name"] == "deepaas_files"
    assert status["model"]["input_schema"]["required"] == ["upload", "repeat"]
    http = harness.http
    base = "/deepaas/dfiles"

    root = (await http.get(base + "/")).json()
    assert root["versions"][0]["links"][0]["href"] == base + "/v2/"
    models = (await http.get(base + "/v2/models/")).json()["models"]
    assert models[0]["links"] == [{"rel": "self", "href": base + "/v2/models/deepaas_files"}]
    assert models[0]["id"] == "files-1"
    meta = await http.get(base + "/v2/models/deepaas_files/")
    assert meta.status_code == 200 and meta.json()["author"] == "modelplane tests"
    redirect = await http.get(base + "/v2/models/deepaas_files")
    assert redirect.status_code == 308
    assert redirect.headers["location"] == base + "/v2/models/deepaas_files/"

    predict = base + "/v2/models/deepaas_files/predict/"
    files = {"upload": ("in.txt", b"a\nb\nc\n", "text/plain")}
    r = await http.post(predict, params={"repeat": 2, "mode": "lines"}, files=files)
    assert r.status_code == 200, r.text
    pred = r.json()["predictions"]
    assert (pred["value"], pred["original_filename"], pred["warmed"]) == (6, "in.txt", True)
    r = await http.post(predict, params={"repeat": 1}, files=files, headers={"accept": "text/csv"})
    assert (r.status_code, r.headers["content-type"]) == (200, "text/csv")
    assert r.text == "name,mode,value\nin.txt,size,6\n"
    r = await http.post(predict, params={"repeat": 0})
    assert r.status_code == 422
    assert set(r.json()) == {"upload", "repeat"}
    spec = (await http.get(base + "/swagger.json")).json()
    assert spec["basePath"] == base

    assert (await http.post(base + "/v2/models/other/predict/")).status_code == 404
    assert (await http.get("/deepaas/nope/v2/models/")).status_code == 404
    anonymous = await http.get(base + "/v2/models/", headers={"authorization": ""})
    assert anonymous.status_code == 401
    # the native API serves the same module too
    native = await http.post(
        "/api/v1/deployments/dfiles/predict",
        files={"upload": ("x.txt", b"hello", "text/plain")},
        data={"repeat": "2"},
    )
    assert native.status_code == 200, native.text
    assert native.json()["value"] == 10

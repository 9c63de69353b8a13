"""Bad input gets a precise 4xx with a message; the platform keeps serving everyone else."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import Harness

pytestmark = pytest.mark.integration


@pytest.fixture
async def ready(harness: Harness, examples: Path, fixture_models: Path) -> Harness:
    await harness.deploy("digits", examples / "digits")
    await harness.deploy("asyncecho", fixture_models / "asyncecho")
    await harness.wait_ready("digits")
    await harness.wait_ready("asyncecho")
    return harness


async def test_malformed_json_is_400(ready: Harness) -> None:
    r = await ready.http.post(
        "/api/v1/deployments/digits/predict",
        content=b'{"image": [',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_input"
    assert "not valid JSON" in r.json()["message"]


async def test_empty_body_is_400(ready: Harness) -> None:
    r = await ready.http.post(
        "/api/v1/deployments/digits/predict",
        content=b"",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400 and "empty request body" in r.json()["message"]


async def test_schema_violation_names_the_path(ready: Harness) -> None:
    grid = [[0] * 8 for _ in range(8)]
    grid[2][5] = 99
    r = await ready.predict("digits", {"image": grid})
    assert r.status_code == 400
    assert "image/2/5" in r.json()["message"]
    assert "maximum of 16" in r.json()["message"]
    r = await ready.predict("digits", {"picture": grid})
    assert r.status_code == 400 and "'image' is a required property" in r.json()["message"]


async def test_wrong_media_type_is_415(ready: Harness) -> None:
    r = await ready.http.post(
        "/api/v1/deployments/digits/predict",
        content=b"a,b\n1,2",
        headers={"content-type": "text/csv"},
    )
    assert r.status_code == 415
    assert "image/png" in r.json()["message"]


async def test_digits_accepts_png_upload(ready: Harness, tmp_path: Path) -> None:
    from PIL import Image, ImageDraw

    img = Image.new("L", (64, 64), 255)
    ImageDraw.Draw(img).line([(32, 6), (32, 58)], fill=0, width=7)
    path = tmp_path / "one.png"
    img.save(path)
    with open(path, "rb") as f:
        r = await ready.http.post(
            "/api/v1/deployments/digits/predict", files={"image": ("one.png", f, "image/png")}
        )
    assert r.status_code == 200, r.text
    assert r.json()["digit"] == 1
    assert len(r.json()["probabilities"]) == 10


async def test_digits_classifies_training_like_input(ready: Harness) -> None:
    from sklearn.datasets import load_digits

    data = load_digits()
    hits = 0
    for i in range(20):
        grid = data.images[i].tolist()
        r = await ready.predict("digits", {"image": grid})
        hits += r.json()["digit"] == int(data.target[i])
    assert hits >= 19


async def test_multipart_files_and_fields_reach_the_model(ready: Harness) -> None:
    r = await ready.http.post(
        "/api/v1/deployments/asyncecho/predict",
        files={"photo": ("cat.png", b"\x89PNG....", "image/png")},
        data={"threshold": "0.5", "label": "cat"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["files"]["photo"] == {"filename": "cat.png", "type": "image/png", "size": 8}
    assert body["fields"] == {"threshold": 0.5, "label": "cat"}


async def test_raw_file_body_and_binary_output(ready: Harness) -> None:
    r = await ready.http.post(
        "/api/v1/deployments/asyncecho/predict",
        content=b"abc",
        headers={"content-type": "text/plain"},
    )
    assert r.status_code == 200
    assert r.content == b"cba" and r.headers["content-type"] == "text/plain"


async def test_unknown_deployment_is_404(ready: Harness) -> None:
    r = await ready.predict("nope", {})
    assert r.status_code == 404
    assert r.json()["error"] == "deployment_not_found"
    assert (await ready.http.get("/api/v1/deployments/nope")).status_code == 404
    assert (await ready.http.delete("/api/v1/deployments/nope")).status_code == 404
    assert (await ready.http.get("/api/v1/deployments/nope/logs")).status_code == 404


@pytest.mark.parametrize("platform_settings", [{"max_body": 64 * 1024}])
async def test_oversized_body_is_413_and_others_keep_being_served(ready: Harness) -> None:
    big = b'{"x": "' + b"a" * (128 * 1024) + b'"}'
    r = await ready.http.post(
        "/api/v1/deployments/asyncecho/predict",
        content=big,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413
    assert "over the limit of 65536 bytes" in r.json()["message"]
    r = await ready.predict("asyncecho", {"still": "fine"})
    assert r.json() == {"still": "fine"}


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"name": "Bad_Name"}, "name"),
        ({"scale": {"replicas": 0}}, "scale.replicas"),
        ({"resources": {"memory": "lots"}}, "resources.memory"),
        ({"resources": {"cpu": -1}}, "resources.cpu"),
        ({"mode": "sometimes"}, "mode"),
        ({"colour": "blue"}, "colour"),
        ({"scale": {"min": 3, "max": 2}}, "scale"),
        ({"input": "in-bucket"}, "input and output"),
        ({"env": {"MODELPLANE_X": "1"}}, "env"),
    ],
)
async def test_invalid_spec_names_the_field(
    harness: Harness, examples: Path, spec: dict, field: str
) -> None:
    body = {"name": "ok", "model": {"path": str(examples / "echo")}, **spec}
    r = await harness.http.post("/api/v1/deployments", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid_spec"
    assert field in r.json()["message"]


async def test_model_folder_without_manifest_is_422(harness: Harness, tmp_path: Path) -> None:
    r = await harness.http.post(
        "/api/v1/deployments", json={"name": "x", "model": {"path": str(tmp_path)}}
    )
    assert r.status_code == 422
    assert "model.path" in r.json()["message"] and "modelplane.yaml" in r.json()["message"]


async def test_malformed_json_spec_is_400(harness: Harness) -> None:
    r = await harness.http.post(
        "/api/v1/deployments", content=b"{name: x", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_input"


async def test_duplicate_deployment_is_409(harness: Harness, examples: Path) -> None:
    await harness.deploy("echo", examples / "echo")
    r = await harness.http.post(
        "/api/v1/deployments", json={"name": "echo", "model": {"path": str(examples / "echo")}}
    )
    assert r.status_code == 409 and "already exists" in r.json()["message"]


async def test_update_with_mismatched_name_is_422(harness: Harness, examples: Path) -> None:
    await harness.deploy("echo", examples / "echo")
    r = await harness.http.put(
        "/api/v1/deployments/echo",
        json={"name": "other", "model": {"path": str(examples / "echo")}},
    )
    assert r.status_code == 422


async def test_auth_is_required_everywhere(harness: Harness, examples: Path) -> None:
    await harness.deploy("echo", examples / "echo")
    await harness.wait_ready("echo")
    async with httpx.AsyncClient(base_url=harness.platform.url) as anon:
        for method, path in [
            ("GET", "/api/v1/deployments"),
            ("GET", "/api/v1/deployments/echo"),
            ("POST", "/api/v1/deployments/echo/predict"),
            ("GET", "/api/v1/deployments/echo/logs"),
            ("GET", "/metrics"),
            ("DELETE", "/api/v1/deployments/echo"),
            ("GET", "/api/v1/info"),
        ]:
            r = await anon.request(method, path, json={})
            assert r.status_code == 401, (method, path, r.text)
            r = await anon.request(
                method, path, json={}, headers={"authorization": "Bearer mp_not-a-token"}
            )
            assert r.status_code == 401, (method, path)
        r = await anon.get("/api/v1/deployments", params={"token": harness.platform.admin_token})
        assert r.status_code == 401 and "query string" in r.json()["message"]
        assert (await anon.get("/api/v1/health")).status_code == 200
    assert (await harness.predict("echo", {"a": 1})).status_code == 200


@pytest.mark.parametrize("platform_settings", [{"local": True}])
async def test_local_mode_needs_no_token(harness: Harness, examples: Path) -> None:
    assert harness.platform.admin_token is None
    await harness.deploy("echo", examples / "echo")
    await harness.wait_ready("echo")
    async with httpx.AsyncClient(base_url=harness.platform.url) as anon:
        assert (await anon.post("/api/v1/deployments/echo/predict", json=[1])).json() == [1]
        assert (await anon.get("/api/v1/info")).json()["local_mode"] is True


async def test_openapi_documents_the_api(harness: Harness) -> None:
    doc = (await harness.http.get("/openapi.json")).json()
    assert "/api/v1/deployments" in doc["paths"]
    assert "/api/v1/deployments/{name}/predict" in doc["paths"]
    assert (await harness.http.get("/docs")).status_code == 200

"""``GET /api/v1/deployments/{name}/export?target=…`` on a real platform: a zip of the same files
the CLI writes, the warnings in a header, only for the deployment's owner; and
``modelplane export NAME`` through it."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from modelplane.backends.export import TARGETS
from modelplane.cli.main import app
from tests.integration.conftest import Harness

pytestmark = pytest.mark.integration


async def bob(h: Harness) -> httpx.AsyncClient:
    assert (await h.http.post("/api/v1/users", json={"name": "bob"})).status_code == 201
    r = await h.http.post("/api/v1/tokens", json={"user": "bob", "name": "t"})
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    return httpx.AsyncClient(
        base_url=h.platform.url, headers={"authorization": f"Bearer {token}"}, timeout=30
    )


async def test_the_owner_gets_a_zip_and_everyone_else_a_404(
    harness: Harness, examples: Path
) -> None:
    await harness.deploy("echo", examples / "echo", scale={"replicas": 1})
    r = await harness.http.get(
        "/api/v1/deployments/echo/export", params={"target": "knative", "image": "r.example/e:3"}
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert 'filename="echo-knative.zip"' in r.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
        names = set(archive.namelist())
        assert {"echo-knative/knative.yaml", "echo-knative/Dockerfile"} <= names
        assert "echo-knative/model/echo_model.py" in names
        service = yaml.safe_load(archive.read("echo-knative/knative.yaml"))
        readme = archive.read("echo-knative/README.md").decode()
    assert service["spec"]["template"]["spec"]["containers"][0]["image"] == "r.example/e:3"
    warnings = json.loads(r.headers["x-modelplane-export-warnings"])
    assert warnings and all(w in readme for w in warnings)

    other = await bob(harness)
    async with other:
        r = await other.get("/api/v1/deployments/echo/export", params={"target": "knative"})
        assert r.status_code == 404
        targets = (await other.get("/api/v1/export/targets")).json()
        assert [t["name"] for t in targets] == list(TARGETS)
    r = await harness.http.get("/api/v1/deployments/echo/export", params={"target": "helm"})
    assert r.status_code == 400 and "unknown export target 'helm'" in r.json()["message"]
    r = await harness.http.get("/api/v1/deployments/echo/export")
    assert r.status_code == 400 and "?target=" in r.json()["message"]
    async with httpx.AsyncClient(base_url=harness.platform.url) as anonymous:
        r = await anonymous.get("/api/v1/deployments/echo/export", params={"target": "knative"})
    assert r.status_code == 401


async def test_the_cli_exports_a_deployment_by_name(
    harness: Harness, examples: Path, tmp_path: Path
) -> None:
    await harness.deploy("echo", examples / "echo", scale={"replicas": 1})
    out = tmp_path / "nomad"
    args = ["export", "echo", "--target", "nomad", "--out", str(out)]
    args += ["--url", harness.platform.url, "--token", str(harness.platform.admin_token)]
    result = await asyncio.to_thread(CliRunner().invoke, app, args)
    assert result.exit_code == 0, result.output
    assert (out / "echo.nomad.hcl").read_text().count('job "echo"') == 1
    assert (out / "model" / "echo_model.py").is_file()
    assert "warning:" in result.output and "MHz" in result.output
    missing = ["export", "nope", "-t", "nomad", "--out", str(tmp_path / "x")]
    missing += ["--url", harness.platform.url, "--token", str(harness.platform.admin_token)]
    result = await asyncio.to_thread(CliRunner().invoke, app, missing)
    assert result.exit_code == 1 and "nope" in result.output


async def test_export_oscar_then_import_fdl_gives_back_the_same_deployment(
    harness: Harness, examples: Path, tmp_path: Path
) -> None:
    spec = {
        "name": "digits-svc",
        "model": {"path": str(examples / "digits")},
        "mode": "serverless",
        "scale": {"min": 0, "max": 3},
        "resources": {"cpu": 0.5, "memory": "256Mi"},
        "files": {
            "input": {"bucket": "digits-svc-in", "folder": "in", "suffix": [".png"]},
            "outputs": [{"bucket": "digits-svc-out", "folder": "out"}],
        },
        "env": {"MODE": "fast"},
        "description": "digits as an OSCAR service",
    }
    r = await harness.http.post("/api/v1/deployments", json=spec)
    assert r.status_code == 201, r.text
    exported = (await harness.http.get("/api/v1/deployments/digits-svc")).json()["spec"]
    runner = CliRunner()
    login = ["--url", harness.platform.url, "--token", str(harness.platform.admin_token)]
    out = tmp_path / "oscar"
    args = ["export", "digits-svc", "-t", "oscar", "--out", str(out), *login]
    result = await asyncio.to_thread(runner.invoke, app, args)
    assert result.exit_code == 0, result.output
    assert (await harness.http.delete("/api/v1/deployments/digits-svc")).status_code == 204

    args = ["import-fdl", str(out / "fdl.yaml"), *login]
    result = await asyncio.to_thread(runner.invoke, app, args)
    assert result.exit_code == 0, result.output
    imported = (await harness.http.get("/api/v1/deployments/digits-svc")).json()["spec"]
    assert imported == exported

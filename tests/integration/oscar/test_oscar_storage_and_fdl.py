"""oscar-python's storage client on the S3 backend, visibility between users, model services,
and `modelplane import-fdl`."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.integration.conftest import start_platform
from tests.polling import eventually
from typer.testing import CliRunner

from modelplane.cli.main import app
from modelplane.controlplane.platform import Platform

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        importlib.util.find_spec("oscar_python") is None,
        reason="the official OSCAR client is not installed: pip install oscar-python==2.2.0",
    ),
]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "oscar"
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
FAST = {"watch_interval": 0.2, "autoscale_interval": 0.05, "stable_window": 2.0}


def client_for(platform: Platform, user: str = "admin", password: str | None = None) -> Any:
    from oscar_python.client import Client

    return Client(
        {
            "cluster_id": "modelplane",
            "endpoint": platform.url,
            "user": user,
            "password": password or platform.admin_token,
            "ssl": False,
        }
    )


async def test_storage_client_puts_inputs_and_gets_results_on_s3(
    tmp_path: Path, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    platform = await start_platform(
        tmp_path / "data", storage="s3", s3_endpoint=moto_endpoint, s3_region="us-east-1", **FAST
    )
    call = asyncio.to_thread
    try:
        client = client_for(platform)
        config = (await call(client.get_cluster_config)).json()["minio_provider"]
        assert config["endpoint"] == moto_endpoint and config["access_key"] == "test"
        service = {
            "name": "s3upper",
            "image": "alpine",
            "script": (FIXTURES / "upper.sh").read_text(),
            "input": [{"storage_provider": "minio.default", "path": "s3upper-in/input"}],
            "output": [{"storage_provider": "minio.default", "path": "s3upper-out/output"}],
        }
        assert (await call(client.create_service, service)).status_code == 201
        storage = await call(client.create_storage_client, "s3upper")
        note = tmp_path / "note.txt"
        note.write_text("stored in s3")
        await call(storage.upload_file, "minio.default", str(note), "s3upper-in/input")

        async def done() -> Any:
            jobs = (await call(client.list_jobs, "s3upper")).json()["jobs"]
            return [j for j in jobs.values() if j["status"] == "Succeeded"]

        await eventually(done, timeout=60, interval=0.2)
        # the script wrote $TMP_OUTPUT_DIR/note.txt.txt: that name, under the output path
        listing = await call(storage.list_files_from_path, "minio.default", "s3upper-out/output")
        keys = [o["Key"] for o in listing["Contents"]]
        assert keys == ["output/note.txt.txt"]
        target = tmp_path / "downloads"
        target.mkdir()
        await call(
            storage.download_file, "minio.default", str(target), "s3upper-out/output/note.txt.txt"
        )
        assert (target / "note.txt.txt").read_text() == "STORED IN S3"
    finally:
        await platform.stop()


async def test_visibility_model_services_and_import_fdl(tmp_path: Path) -> None:
    platform = await start_platform(tmp_path / "data", **FAST)
    call = asyncio.to_thread
    admin = {"authorization": f"Bearer {platform.admin_token}"}
    try:
        async with httpx.AsyncClient(base_url=platform.url, headers=admin, timeout=60) as http:
            assert (await http.post("/api/v1/users", json={"name": "ana"})).status_code == 201
            r = await http.post("/api/v1/tokens", json={"user": "ana"})
            ana_token = r.json()["token"]

            # import-fdl, as a user runs it
            runner = CliRunner()
            args = ["import-fdl", str(FIXTURES / "services.yaml"), "--url", platform.url]
            result = await call(runner.invoke, app, [*args, "--token", platform.admin_token])
            assert result.exit_code == 0, result.output
            assert "service upper created" in result.output
            result = await call(runner.invoke, app, [*args, "--token", platform.admin_token])
            assert result.exit_code == 1 and "already exists" in result.output
            result = await call(
                runner.invoke, app, [*args, "--update", "--token", platform.admin_token]
            )
            assert result.exit_code == 0 and "service greet updated" in result.output
            dep = (await http.get("/api/v1/deployments/upper")).json()
            assert dep["spec"]["input"] == "upper-in" and dep["spec"]["model"]["loader"] == "oscar"
            assert dep["spec"]["env"] == {"GREETING": "hello"}

            # a service that names a model (the echo example) instead of a script
            svc = {"name": "echo", "image": "none", "model": {"path": str(EXAMPLES / "echo")}}
            assert (await http.post("/system/services", json=svc)).status_code == 201
            r = await http.post("/run/echo", json={"hello": [1, 2]})
            assert r.status_code == 200 and r.json() == {"hello": [1, 2]}

        ana = client_for(platform, "ana", ana_token)
        assert (await call(ana.list_services)).json() == []  # private services of the admin
        with pytest.raises(Exception) as info:
            await call(ana.run_service, "greet", input="x", token=ana_token)
        assert info.value.response.status_code == 404  # type: ignore[attr-defined]

        admin_client = client_for(platform)
        greet = (await call(admin_client.get_service, "greet")).json()
        greet["visibility"] = "restricted"
        greet["allowed_users"] = ["ana"]
        await call(admin_client.update_service, "greet", greet)
        assert [s["name"] for s in (await call(ana.list_services)).json()] == ["greet"]
        r = await call(ana.run_service, "greet", input="Ana", token=ana_token)
        assert r.text == "Hi, Ana!\n"
        # seeing a service is not owning it
        with pytest.raises(Exception) as info:
            await call(ana.remove_service, "greet")
        assert info.value.response.status_code == 404  # type: ignore[attr-defined]

        # ana's own service is hers: the admin sees it, she does not see the admin's others
        mine = {"name": "mine", "image": "x", "script": "echo mine"}
        assert (await call(ana.create_service, mine)).status_code == 201
        assert sorted(s["name"] for s in (await call(ana.list_services)).json()) == [
            "greet",
            "mine",
        ]
        owners = {s["name"]: s["owner"] for s in (await call(admin_client.list_services)).json()}
        assert owners["mine"] == "ana" and owners["upper"] == "admin"
        assert (await call(ana.run_service, "mine", input="x")).text == "mine\n"
    finally:
        await platform.stop()

"""``modelplane backup`` while the platform runs, ``modelplane restore`` into a new data
directory: every deployment, user, token and job comes back (SQLite's online backup API)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from modelplane.cli.main import app
from tests.integration.conftest import Harness, start_platform
from tests.polling import eventually

pytestmark = pytest.mark.integration


async def test_restore_into_a_new_data_dir_brings_everything_back(
    harness: Harness, fixture_models: Path, tmp_path: Path
) -> None:
    h = harness
    r = await h.http.post("/api/v1/users", json={"name": "ann", "quotas": {"deployments": 3}})
    assert r.status_code == 201, r.text
    r = await h.http.post("/api/v1/tokens", json={"user": "ann", "name": "laptop"})
    ann_token = r.json()["token"]
    body = {
        "name": "rev",
        "model": {"path": str(fixture_models / "asyncecho")},
        "mode": "dedicated",
        "input": "rev-in",
        "output": "rev-out",
    }
    ann = httpx.AsyncClient(
        base_url=h.platform.url, headers={"authorization": f"Bearer {ann_token}"}, timeout=30
    )
    async with ann:
        assert (await ann.post("/api/v1/deployments", json=body)).status_code == 201
        files = [("files", (f"n-{i}.txt", b"x", "text/plain")) for i in range(3)]
        assert (await ann.post("/api/v1/deployments/rev/jobs", files=files)).status_code == 201
        before = (await ann.get("/api/v1/deployments/rev/jobs")).json()["jobs"]

    backup = tmp_path / "store.backup"
    runner = CliRunner()
    # Online: the platform is running (and its job runner writing) while the backup is taken.
    done = await asyncio.to_thread(
        runner.invoke, app, ["backup", str(backup), "--data-dir", str(h.platform.settings.data_dir)]
    )
    assert done.exit_code == 0, done.output
    assert "store backed up" in done.output
    again = await asyncio.to_thread(
        runner.invoke, app, ["backup", str(backup), "--data-dir", str(h.platform.settings.data_dir)]
    )
    assert again.exit_code == 1 and "never overwrites" in " ".join(again.output.split())

    fresh = tmp_path / "restored"
    done = runner.invoke(app, ["restore", str(backup), "--data-dir", str(fresh)])
    assert done.exit_code == 0, done.output
    twice = runner.invoke(app, ["restore", str(backup), "--data-dir", str(fresh)])
    assert twice.exit_code == 1 and "already exists" in " ".join(twice.output.split())

    restored = await start_platform(fresh)
    try:
        # ann's old token still works on the restored platform: tokens came back.
        ann = httpx.AsyncClient(
            base_url=restored.url, headers={"authorization": f"Bearer {ann_token}"}, timeout=30
        )
        async with ann:
            deps = (await ann.get("/api/v1/deployments")).json()
            assert [d["name"] for d in deps] == ["rev"]
            jobs = (await ann.get("/api/v1/deployments/rev/jobs")).json()["jobs"]
            assert sorted(j["id"] for j in jobs) == sorted(j["id"] for j in before)
            me = (await ann.get("/api/v1/users/ann")).json()
            assert me["quotas"] == {"deployments": 3}
            tokens = (await ann.get("/api/v1/tokens")).json()
            assert [t["name"] for t in tokens] == ["laptop"]

            # and the restored platform serves the restored deployment
            async def ready() -> bool:
                st = (await ann.get("/api/v1/deployments/rev")).json()["status"]
                return bool(st["ready"])

            await eventually(ready, timeout=30)
    finally:
        await restored.stop()


def test_a_file_that_is_not_a_backup_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a database at all" * 100)
    done = CliRunner().invoke(app, ["restore", str(junk), "--data-dir", str(tmp_path / "d")])
    assert done.exit_code == 1
    assert "is not a SQLite backup of a modelplane store" in " ".join(done.output.split())
    assert not (tmp_path / "d" / "modelplane.db").exists()

"""A tenant's model cannot touch anyone else's data: a hostile model tries, inside the real sandbox.

The platform runs here as root (as in CI), so each deployment's replicas get a uid of their own;
bubblewrap is real (installed by scripts/test.sh). Every attempt below must fail, and a positive
control in the same sandbox (its own cache, its own /tmp, the network when allowed) shows the
model itself works, so a failure is the sandbox's doing.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Harness

pytestmark = [pytest.mark.integration, pytest.mark.sandbox]

PLATFORM_SECRET = "MODELPLANE_TEST_PLATFORM_SECRET"


@pytest.fixture
def platform_settings(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    # A secret in the platform's own environment (cloud credentials are, with --storage s3).
    monkeypatch.setenv(PLATFORM_SECRET, "do-not-leak")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak-either")
    return {}


async def user(h: Harness, name: str) -> httpx.AsyncClient:
    r = await h.http.post("/api/v1/users", json={"name": name})
    assert r.status_code == 201, r.text
    r = await h.http.post("/api/v1/tokens", json={"user": name, "name": "t"})
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    return httpx.AsyncClient(
        base_url=h.platform.url, headers={"authorization": f"Bearer {token}"}, timeout=30
    )


async def deploy(c: httpx.AsyncClient, name: str, path: Path, **spec: Any) -> None:
    body = {"name": name, "model": {"path": str(path)}, "mode": "dedicated", **spec}
    r = await c.post("/api/v1/deployments", json=body)
    assert r.status_code == 201, r.text


async def attempt(c: httpx.AsyncClient, name: str, **inputs: Any) -> dict[str, Any]:
    r = await c.post(f"/api/v1/deployments/{name}/predict", json=inputs)
    assert r.status_code == 200, r.text
    return r.json()


def host_uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


@pytest.mark.skipif(os.geteuid() != 0, reason="per-deployment uids need the platform to be root")
async def test_a_hostile_model_reaches_nothing_of_the_platform_or_other_tenants(
    harness: Harness, fixture_models: Path, tmp_path: Path
) -> None:
    data = harness.platform.settings.data_dir
    token_file = harness.platform.settings.token_file
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600

    alice_dir, mallory_dir = tmp_path / "alice-model", tmp_path / "mallory-model"
    shutil.copytree(fixture_models / "hostile", alice_dir)
    shutil.copytree(fixture_models / "hostile", mallory_dir)
    (mallory_dir / "secret.txt").unlink()
    alice_bucket = harness.platform.settings.buckets_dir / "alice-in"
    alice_bucket.mkdir(parents=True)
    (alice_bucket / "upload.txt").write_text("alice's upload")

    alice, mallory = await user(harness, "alice"), await user(harness, "mallory")
    async with alice, mallory:
        await deploy(alice, "alice-model", alice_dir, env={"ALICE_KEY": "alice-only"})
        await deploy(mallory, "mal", mallory_dir)
        await deploy(mallory, "mal-offline", mallory_dir, network="none")
        alice_status = await harness.wait_ready("alice-model")
        await harness.wait_ready("mal")
        await harness.wait_ready("mal-offline")
        alice_pid = alice_status["replicas"][0]["pid"]
        mal_pid = (await harness.status("mal"))["status"]["replicas"][0]["pid"]

        # Positive controls: the model runs, sees its own folder, writes its cache and /tmp.
        assert (await attempt(mallory, "mal", op="list", path=str(mallory_dir)))["ok"]
        me = await attempt(mallory, "mal", op="whoami")
        cache = me["env"]["MODELPLANE_CACHE_DIR"]
        assert (await attempt(mallory, "mal", op="write", path=f"{cache}/mine"))["ok"]
        assert (await attempt(mallory, "mal", op="write", path="/tmp/scratch"))["ok"]

        # Identity: not root, not the platform, not another tenant.
        assert me["uid"] != 0 and me["gid"] != 0
        assert host_uid(mal_pid) == me["uid"]
        assert host_uid(alice_pid) not in (0, me["uid"])
        # No platform secret in its environment.
        assert PLATFORM_SECRET not in me["env"] and "AWS_SECRET_ACCESS_KEY" not in me["env"]
        # Other processes do not exist for it: not the platform, not alice's replica.
        assert os.getpid() not in me["pids"] and alice_pid not in me["pids"]
        assert max(me["pids"]) < 100  # only its own pid namespace's few processes

        denied = {
            "admin token file": ("read", str(token_file)),
            "SQLite store": ("read", str(data / "modelplane.db")),
            "data directory": ("list", str(data)),
            "another tenant's model folder": ("read", str(alice_dir / "secret.txt")),
            "another tenant's bucket": ("read", str(alice_bucket / "upload.txt")),
            "buckets": ("list", str(harness.platform.settings.buckets_dir)),
            "another tenant's cache": ("list", str(harness.platform.settings.cache_dir)),
            "another replica's environment": ("read", f"/proc/{alice_pid}/environ"),
            "the platform's environment": ("read", f"/proc/{os.getpid()}/environ"),
            "write into the data directory": ("write", str(data / "planted")),
            "write into its own model folder": ("write", str(mallory_dir / "planted")),
        }
        for what, (op, path) in denied.items():
            got = await attempt(mallory, "mal", op=op, path=path)
            assert got["ok"] is False, f"{what}: the hostile model got {got}"
        assert not (data / "planted").exists() and not (mallory_dir / "planted").exists()
        # Signals cannot reach what it cannot see.
        assert (await attempt(mallory, "mal", op="kill", path=str(alice_pid)))["ok"] is False
        assert (await harness.status("alice-model"))["status"]["ready"] == 1

        # Network: allowed by default, none when the spec says so.
        port = harness.platform.port
        assert (await attempt(mallory, "mal", op="connect", host="127.0.0.1", port=port))["ok"]
        offline = await attempt(mallory, "mal-offline", op="connect", host="127.0.0.1", port=port)
        assert offline["ok"] is False


async def test_a_model_folder_inside_the_data_directory_is_refused(
    harness: Harness, fixture_models: Path
) -> None:
    # e.g. a model uploaded into a bucket, deployed from there: its sandbox would show the bucket
    inside = harness.platform.settings.buckets_dir / "mine" / "model"
    shutil.copytree(fixture_models / "hostile", inside)
    await harness.deploy("sneaky", inside)
    r = await harness.predict("sneaky", {"op": "whoami"})
    assert r.status_code == 503
    assert "overlaps the platform's data directory" in r.json()["message"]

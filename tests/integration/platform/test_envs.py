"""Per-model environments on a real platform: real uv/pip builds, real replica processes."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Harness
from tests.polling import eventually

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="session")
def wheel_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One wheel cache for the session: each test builds its environments, downloads once."""
    return tmp_path_factory.mktemp("wheels")


@pytest.fixture
def platform_settings(wheel_cache: Path) -> dict[str, Any]:
    return {"envs_cache": wheel_cache}


async def test_a_model_pinning_an_old_library_gets_its_own_version(
    harness: Harness, fixture_models: Path, tmp_path: Path
) -> None:
    await harness.deploy("pinned", fixture_models / "pinned")
    seen: list[str] = []

    async def building_then_ready() -> dict | None:
        st = (await harness.status("pinned"))["status"]
        seen.append(st["state"])
        return st if st["ready"] >= 1 else None

    st = await eventually(building_then_ready, timeout=180)
    assert "building" in seen
    assert st["environment"]["state"] == "ready"
    r = await harness.predict("pinned", {})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["httpx"] == "0.23.0"  # the platform runs httpx >= 0.27 meanwhile
    assert httpx.__version__ != "0.23.0"
    assert body["prefix"] == st["environment"]["path"]
    assert body["fastapi"] is False and body["sqlalchemy"] is False
    # a second deployment with the same requirements shares the environment: no build
    copy = tmp_path / "pinned-copy"
    shutil.copytree(fixture_models / "pinned", copy)
    started = time.monotonic()
    await harness.deploy("pinned-2", copy)
    st2 = await harness.wait_ready("pinned-2", timeout=60)
    assert time.monotonic() - started < 10
    assert st2["environment"]["key"] == st["environment"]["key"]
    assert (await harness.predict("pinned-2", {})).json()["prefix"] == body["prefix"]
    assert (await harness.http.get("/api/v1/deployments")).status_code == 200  # platform fine


async def test_a_broken_requirement_is_a_clear_status(harness: Harness, tmp_path: Path) -> None:
    folder = tmp_path / "broken-reqs"
    folder.mkdir()
    (folder / "requirements.txt").write_text("modelplane-no-such-package-xyz==9.9.9\n")
    (folder / "modelplane.yaml").write_text("name: broken-reqs\nentrypoint: m:M\n")
    (folder / "m.py").write_text("class M:\n    def predict(self, x):\n        return x\n")
    await harness.deploy("broken-reqs", folder)

    async def failed() -> dict | None:
        st = (await harness.status("broken-reqs"))["status"]
        return st if st["state"] == "failing" else None

    st = await eventually(failed, timeout=120)
    assert st["environment"]["state"] == "failed"
    assert "modelplane-no-such-package-xyz" in st["last_error"]
    assert st["restarts"] == 0  # not a crash loop: no replica was ever started
    r = await harness.predict("broken-reqs", {"a": 1})
    assert r.status_code == 503
    assert "could not be built" in r.json()["message"]

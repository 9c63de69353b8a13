"""A real platform in the test's event loop: real store, real gateway, real replica processes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelplane.clock import Clock
from modelplane.controlplane.platform import Platform
from modelplane.settings import Settings
from tests.polling import eventually


class Harness:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        headers = {}
        if platform.admin_token:
            headers["authorization"] = f"Bearer {platform.admin_token}"
        self.http = httpx.AsyncClient(base_url=platform.url, headers=headers, timeout=30)

    async def deploy(self, name: str, path: Path, **spec: Any) -> dict[str, Any]:
        body = {"name": name, "model": {"path": str(path)}, "mode": "dedicated", **spec}
        r = await self.http.post("/api/v1/deployments", json=body)
        assert r.status_code == 201, r.text
        return r.json()

    async def status(self, name: str) -> dict[str, Any]:
        r = await self.http.get(f"/api/v1/deployments/{name}")
        assert r.status_code == 200, r.text
        return r.json()

    async def wait_ready(self, name: str, n: int = 1, timeout: float = 30) -> dict[str, Any]:
        async def ready() -> dict[str, Any] | None:
            st = (await self.status(name))["status"]
            return st if st["ready"] >= n else None

        return await eventually(ready, timeout=timeout)

    async def predict(self, name: str, body: Any) -> httpx.Response:
        return await self.http.post(f"/api/v1/deployments/{name}/predict", json=body)


async def start_platform(data_dir: Path, clock: Clock | None = None, **overrides: Any) -> Platform:
    """A platform on a free port; ``clock``: a fake one, for time the test moves itself."""
    settings = Settings(
        data_dir=data_dir, port=0, reconcile_interval=0.1, stop_grace=2.0, **overrides
    )
    platform = Platform(settings, clock=clock)
    await platform.start()
    return platform


@pytest.fixture
def platform_settings() -> dict[str, Any]:
    return {}


@pytest.fixture
async def harness(tmp_path: Path, platform_settings: dict[str, Any]) -> AsyncIterator[Harness]:
    platform = await start_platform(tmp_path / "data", **platform_settings)
    h = Harness(platform)
    try:
        yield h
    finally:
        await h.http.aclose()
        await platform.stop()


# A real S3-speaking server (moto's standalone server) on loopback, shared by every suite.
from tests.integration.s3server import MOTO_MISSING, MOTO_MISSING_REASON, moto_endpoint  # noqa: E402,F401

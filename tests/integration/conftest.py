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
from modelplane.testing.clock import FakeClock
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

    async def idle_for(self, name: str, seconds: float | None = None) -> int:
        """Let ``seconds`` (default: the deployment's idle timeout) pass on the platform's
        :class:`FakeClock` with no traffic; return what the autoscaler then decides, once the
        reconciler has acted on it.

        The autoscaler first takes note of the traffic so far, so the idle period starts at
        the clock's current instant, not at whichever tick happened to see the last request.
        One decision scales down by half at most (``max_scale_down_rate``), as each tick does.
        """
        p = self.platform
        assert isinstance(p.clock, FakeClock), "start the platform with a FakeClock"
        spec = p.reconciler.deployments[name].spec
        p.autoscaler.tick(spec, p.clock.now())
        p.clock.advance(spec.scale.idle_timeout if seconds is None else seconds)
        decided = p.autoscaler.tick(spec, p.clock.now())
        await p.reconciler.converge(name)  # acted on now, not at the next pass
        return decided

    async def idle_to_zero(self, name: str) -> None:
        """Let the idle timeout pass (:meth:`idle_for`), then let the autoscaler decide until
        it wants no replica (each decision halves at most)."""
        decided = await self.idle_for(name)
        for _ in range(8):
            if decided == 0:
                return
            decided = await self.idle_for(name, 0)
        raise AssertionError(f"{name!r} still wants {decided} replicas after its idle timeout")


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

"""The platform with its store in a real PostgreSQL: the same API, and state that outlives it."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelplane.errors import StoreUnavailable
from modelplane.store import open_store
from tests.integration.conftest import Harness, start_platform

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


async def test_deploy_predict_and_restart_on_postgresql(
    tmp_path: Path, examples: Path, postgres_url: str
) -> None:
    platform = await start_platform(tmp_path / "a", store_url=postgres_url)
    h = Harness(platform)
    try:
        await h.deploy("echo", examples / "echo")
        await h.wait_ready("echo")
        r = await h.predict("echo", {"x": 1})
        assert r.status_code == 200 and r.json()["x"] == 1
        token = platform.admin_token
    finally:
        await h.http.aclose()
        await platform.stop()
    # Another data directory, same database: everything is in PostgreSQL, nothing in the folder.
    again = await start_platform(tmp_path / "b", store_url=postgres_url)
    h = Harness(again)
    try:
        assert again.admin_token != token  # the token file is per data dir; a new one is made
        await h.wait_ready("echo")
        r = await h.predict("echo", {"x": 2})
        assert r.status_code == 200 and r.json()["x"] == 2
        assert not (tmp_path / "b" / "modelplane.db").exists()
    finally:
        await h.http.aclose()
        await again.stop()


def test_an_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    url = f"postgresql://nobody@/modelplane?host={tmp_path}"  # no server listens there
    with pytest.raises(StoreUnavailable, match="cannot open the store") as info:
        open_store(url)
    assert info.value.hint is not None and "database server" in info.value.hint

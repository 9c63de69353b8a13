"""``modelplane backup --store-url postgresql…`` while the platform runs on a real PostgreSQL,
``modelplane restore`` into a fresh database: every deployment, user, token and job comes back
(``pg_dump --format=custom`` / ``pg_restore``, Debian's client binaries)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from modelplane.cli.main import app
from tests.integration.conftest import start_platform
from tests.pgserver import PostgresServer
from tests.polling import eventually

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


async def test_pg_restore_into_a_fresh_database_brings_everything_back(
    postgres_server: PostgresServer, fixture_models: Path, tmp_path: Path
) -> None:
    source_db = postgres_server.new_database()
    platform = await start_platform(tmp_path / "a", store_url=source_db)
    admin = httpx.AsyncClient(
        base_url=platform.url,
        headers={"authorization": f"Bearer {platform.admin_token}"},
        timeout=30,
    )
    try:
        r = await admin.post("/api/v1/users", json={"name": "ann", "quotas": {"deployments": 3}})
        assert r.status_code == 201, r.text
        r = await admin.post("/api/v1/tokens", json={"user": "ann", "name": "laptop"})
        ann_token = r.json()["token"]
        ann = httpx.AsyncClient(
            base_url=platform.url, headers={"authorization": f"Bearer {ann_token}"}, timeout=30
        )
        async with ann:
            body = {
                "name": "rev",
                "model": {"path": str(fixture_models / "asyncecho")},
                "mode": "dedicated",
                "input": "rev-in",
                "output": "rev-out",
            }
            assert (await ann.post("/api/v1/deployments", json=body)).status_code == 201
            files = [("files", (f"n-{i}.txt", b"x", "text/plain")) for i in range(3)]
            r = await ann.post("/api/v1/deployments/rev/jobs", files=files)
            assert r.status_code == 201, r.text
            before = (await ann.get("/api/v1/deployments/rev/jobs")).json()["jobs"]

        backup = tmp_path / "store.pgdump"
        runner = CliRunner()
        # Online: pg_dump reads one snapshot while the platform keeps writing.
        done = await asyncio.to_thread(
            runner.invoke, app, ["backup", str(backup), "--store-url", source_db]
        )
        assert done.exit_code == 0, done.output
        assert "store backed up" in done.output
        assert backup.read_bytes()[:5] == b"PGDMP"  # pg_dump's custom format
    finally:
        await admin.aclose()
        await platform.stop()

    fresh_db = postgres_server.new_database()
    done = runner.invoke(app, ["restore", str(backup), "--store-url", fresh_db])
    assert done.exit_code == 0, done.output
    # A second restore into the same, now populated, database is refused without --force.
    twice = runner.invoke(app, ["restore", str(backup), "--store-url", fresh_db])
    assert twice.exit_code == 1
    assert "already exists" in " ".join(twice.output.split())
    forced = runner.invoke(app, ["restore", str(backup), "--store-url", fresh_db, "--force"])
    assert forced.exit_code == 0, forced.output

    restored = await start_platform(tmp_path / "b", store_url=fresh_db)
    try:
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

            async def ready() -> bool:
                st = (await ann.get("/api/v1/deployments/rev")).json()["status"]
                return bool(st["ready"])

            await eventually(ready, timeout=30)
    finally:
        await restored.stop()


def test_pg_restore_of_a_file_that_is_not_a_dump_is_refused(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a dump" * 100)
    done = CliRunner().invoke(
        app, ["restore", str(junk), "--store-url", postgres_server.new_database()]
    )
    assert done.exit_code == 1
    assert "is not a pg_dump backup of a modelplane store" in " ".join(done.output.split())

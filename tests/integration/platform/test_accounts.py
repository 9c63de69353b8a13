"""Users, tokens, inference tokens, expiry, revocation and rate limits against a real platform."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelplane.store.models import utcnow
from modelplane.store.users import UserStore
from tests.integration.conftest import Harness, start_platform

pytestmark = pytest.mark.integration


async def add_user(h: Harness, name: str, **body: Any) -> httpx.AsyncClient:
    """A user and a client holding one of their tokens."""
    r = await h.http.post("/api/v1/users", json={"name": name, **body})
    assert r.status_code == 201, r.text
    r = await h.http.post("/api/v1/tokens", json={"user": name, "name": "test"})
    assert r.status_code == 201, r.text
    return client(h, r.json()["token"])


def client(h: Harness, token: str | None) -> httpx.AsyncClient:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(base_url=h.platform.url, headers=headers, timeout=30)


async def test_admin_manages_users_and_users_see_only_themselves(harness: Harness) -> None:
    ann = await add_user(harness, "ann", quotas={"cpu": 2, "memory": "4Gi", "deployments": 3})
    async with ann:
        me = (await ann.get("/api/v1/users/ann")).json()
        assert me["quotas"] == {"cpu": 2.0, "memory": 4 * 2**30, "deployments": 3}
        assert [u["name"] for u in (await ann.get("/api/v1/users")).json()] == ["ann"]
        assert (await ann.get("/api/v1/users/admin")).status_code == 404
        r = await ann.post("/api/v1/users", json={"name": "eve"})
        assert r.status_code == 403 and r.json()["error"] == "forbidden"
        r = await ann.put("/api/v1/users/ann/quotas", json={"cpu": 100})
        assert r.status_code == 403
        r = await ann.post("/api/v1/tokens", json={"user": "admin"})
        assert r.status_code == 404
        info = (await ann.get("/api/v1/info")).json()
        assert info["user"] == "ann" and info["admin"] is False
    names = [u["name"] for u in (await harness.http.get("/api/v1/users")).json()]
    assert names == ["admin", "ann"]
    r = await harness.http.post("/api/v1/users", json={"name": "ann"})
    assert r.status_code == 409
    r = await harness.http.post("/api/v1/users", json={"name": "Bad Name"})
    assert r.status_code == 422 and "name" in r.json()["message"]
    r = await harness.http.put("/api/v1/users/ann/quotas", json={"gpu": 1})
    assert r.status_code == 200 and r.json()["quotas"] == {"gpu": 1}
    r = await harness.http.delete("/api/v1/users/admin")
    assert r.status_code == 409 and "yourself" in r.json()["message"]


async def test_revoking_a_token_takes_effect_on_the_next_request(
    harness: Harness, examples: Path
) -> None:
    await harness.deploy("echo", examples / "echo", scale={"replicas": 1})
    await harness.wait_ready("echo")
    r = await harness.http.post("/api/v1/tokens", json={"name": "ci"})
    made = r.json()
    assert r.status_code == 201 and made["token"].startswith("mp_") and made["user"] == "admin"
    async with client(harness, made["token"]) as ci:
        assert (await ci.post("/api/v1/deployments/echo/predict", json={"a": 1})).status_code == 200
        assert (await ci.get("/api/v1/deployments")).status_code == 200
        listed = (await harness.http.get("/api/v1/tokens")).json()
        assert made["id"] in [t["id"] for t in listed]
        assert all("token" not in t and "hash" not in t for t in listed)
        assert (await harness.http.delete(f"/api/v1/tokens/{made['id']}")).status_code == 204
        r = await ci.post("/api/v1/deployments/echo/predict", json={"a": 1})
        assert r.status_code == 401
        assert (await ci.get("/api/v1/deployments")).status_code == 401
    assert (await harness.http.delete(f"/api/v1/tokens/{made['id']}")).status_code == 404


async def test_removing_a_user_kills_their_tokens_and_needs_their_things_gone(
    harness: Harness, examples: Path
) -> None:
    ann = await add_user(harness, "ann")
    async with ann:
        r = await ann.post(
            "/api/v1/deployments",
            json={"name": "mine", "model": {"path": str(examples / "echo")}, "mode": "serverless"},
        )
        assert r.status_code == 201 and r.json()["owner"] == "ann"
        r = await harness.http.delete("/api/v1/users/ann")
        assert r.status_code == 409 and "mine" in r.json()["message"]
        assert (await ann.delete("/api/v1/deployments/mine")).status_code == 204
        assert (await harness.http.delete("/api/v1/users/ann")).status_code == 204
        assert (await ann.get("/api/v1/deployments")).status_code == 401


async def test_expired_tokens_are_refused(harness: Harness) -> None:
    users = UserStore(harness.platform.store)
    from modelplane.security import hash_token

    users.create_token("admin", hash_token("mp_old"), expires_at=utcnow() - timedelta(seconds=1))
    soon = utcnow() + timedelta(seconds=1.0)
    users.create_token("admin", hash_token("mp_soon"), expires_at=soon)
    async with client(harness, "mp_old") as old, client(harness, "mp_soon") as brief:
        assert (await old.get("/api/v1/info")).status_code == 401
        assert (await brief.get("/api/v1/info")).status_code == 200  # now cached
        await asyncio.sleep(max(0.0, (soon - utcnow()).total_seconds()) + 0.1)
        r = await brief.get("/api/v1/info")
        assert r.status_code == 401, "an expired token must fail even from the cache"
        r = await brief.post("/api/v1/deployments/x/predict", json={})
        assert r.status_code == 401
    r = await harness.http.post("/api/v1/tokens", json={"expires_in_days": 1})
    assert r.status_code == 201 and r.json()["expires_at"] is not None


async def test_inference_token_predicts_with_its_deployment_only(
    harness: Harness, examples: Path
) -> None:
    await harness.deploy("echo", examples / "echo", scale={"replicas": 1})
    await harness.deploy("other", examples / "echo", scale={"replicas": 1})
    await harness.wait_ready("echo")
    await harness.wait_ready("other")
    r = await harness.http.post("/api/v1/deployments/echo/tokens", json={"name": "share"})
    assert r.status_code == 201, r.text
    shared = r.json()
    assert shared["deployment"] == "echo" and shared["user"] == "admin"
    listed = (await harness.http.get("/api/v1/deployments/echo/tokens")).json()
    assert [t["id"] for t in listed] == [shared["id"]]
    async with client(harness, shared["token"]) as friend:
        r = await friend.post("/api/v1/deployments/echo/predict", json={"x": 1})
        assert r.status_code == 200 and r.json() == {"x": 1}
        r = await friend.post("/api/v1/deployments/other/predict", json={"x": 1})
        assert r.status_code == 404
        r = await friend.post(
            "/v2/models/echo/infer",
            json={"inputs": [{"name": "x", "shape": [1], "datatype": "INT64", "data": [1]}]},
        )
        assert r.status_code not in (401, 403, 404), r.text
        r = await friend.post(
            "/v2/models/other/infer",
            json={"inputs": [{"name": "x", "shape": [1], "datatype": "INT64", "data": [1]}]},
        )
        assert r.status_code == 404
        for method, path in (
            ("GET", "/api/v1/deployments"),
            ("GET", "/api/v1/deployments/echo"),
            ("DELETE", "/api/v1/deployments/echo"),
            ("POST", "/api/v1/tokens"),
            ("GET", "/api/v1/info"),
        ):
            r = await friend.request(method, path)
            assert r.status_code == 403, (method, path, r.text)
            assert "only run predictions" in r.json()["message"]
        # the deployment goes: so do its inference tokens (a new one of that name is not theirs)
        assert (await harness.http.delete("/api/v1/deployments/echo")).status_code == 204
        await harness.deploy("echo", examples / "echo", scale={"replicas": 1})
        await harness.wait_ready("echo")
        r = await friend.post("/api/v1/deployments/echo/predict", json={"x": 1})
        assert r.status_code == 401


@pytest.mark.parametrize("platform_settings", [{"rate_limit": 5.0}])
async def test_rate_limit_per_token_answers_429_with_retry_after(
    harness: Harness, examples: Path
) -> None:
    await harness.deploy("echo", examples / "echo", scale={"replicas": 1})
    await asyncio.sleep(1.2)  # refill what deploy and status calls took
    await harness.wait_ready("echo")
    await asyncio.sleep(1.2)
    statuses = [(await harness.predict("echo", {"i": i})).status_code for i in range(8)]
    assert statuses.count(200) >= 4 and statuses[-1] == 429, statuses
    r = await harness.predict("echo", {})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert r.json()["error"] == "too_many_requests"
    r = await harness.http.get("/api/v1/deployments")
    assert r.status_code == 429, "the REST API shares the token's bucket"
    async with await add_other(harness) as other:
        assert (await other.get("/api/v1/info")).status_code == 200, "other tokens unaffected"
    await asyncio.sleep(0.5)
    assert (await harness.predict("echo", {})).status_code == 200


async def add_other(h: Harness) -> httpx.AsyncClient:
    await asyncio.sleep(1.0)
    r = await h.http.post("/api/v1/tokens", json={"name": "other"})
    assert r.status_code == 201, r.text
    return client(h, r.json()["token"])


async def test_local_mode_needs_no_token(tmp_path: Path, examples: Path) -> None:
    platform = await start_platform(tmp_path / "data", local=True)
    try:
        assert platform.admin_token is None
        async with httpx.AsyncClient(base_url=platform.url, timeout=30) as http:
            info = (await http.get("/api/v1/info")).json()
            assert info["local_mode"] is True and info["user"] == "local"
            r = await http.post(
                "/api/v1/deployments",
                json={"name": "echo", "model": {"path": str(examples / "echo")}},
            )
            assert r.status_code == 201
            assert (await http.get("/api/v1/resources")).status_code == 200
    finally:
        await platform.stop()

"""Users, tokens, inference tokens, expiry, revocation and rate limits against a real platform."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelplane.clock import utc
from modelplane.security import hash_token, new_token
from modelplane.spec import DeploymentSpec
from modelplane.store.models import utcnow
from modelplane.store.users import UserStore
from modelplane.testing.clock import FakeClock
from tests.integration.conftest import Harness, start_platform
from tests.polling import eventually

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


async def test_expired_tokens_are_refused_even_from_the_cache(tmp_path: Path) -> None:
    # The token cache reads the platform's wall clock: a fake one lets the minute pass at once.
    clock = FakeClock(wall=time.time())
    platform = await start_platform(tmp_path / "data", clock=clock)
    try:
        users = UserStore(platform.store)
        users.create_token(
            "admin", hash_token("mp_old"), expires_at=utcnow() - timedelta(seconds=1)
        )
        users.create_token(
            "admin", hash_token("mp_soon"), expires_at=utc(clock) + timedelta(minutes=1)
        )
        h = Harness(platform)
        async with client(h, "mp_old") as old, client(h, "mp_soon") as brief:
            assert (await old.get("/api/v1/info")).status_code == 401
            assert (await brief.get("/api/v1/info")).status_code == 200  # now cached
            clock.advance(61)
            r = await brief.get("/api/v1/info")
            assert r.status_code == 401, "an expired token must fail even from the cache"
            r = await brief.post("/api/v1/deployments/x/predict", json={})
            assert r.status_code == 401
        r = await h.http.post("/api/v1/tokens", json={"expires_in_days": 1})
        assert r.status_code == 201 and r.json()["expires_at"] is not None
        await h.http.aclose()
    finally:
        await platform.stop()


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
        # past auth, at the replica: echo has no tensor signature, and the replica says so
        assert r.status_code == 400, r.text
        assert "declares no tensor inputs" in r.json()["error"]
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


async def test_rate_limit_per_token_answers_429_with_retry_after(
    tmp_path: Path, examples: Path
) -> None:
    # The limiter reads the platform's clock: a fake one refills the bucket only when told to.
    clock = FakeClock(wall=time.time())
    platform = await start_platform(tmp_path / "data", clock=clock, rate_limit=5.0)
    try:
        spec = {"name": "echo", "model": {"path": str(examples / "echo")}, "mode": "dedicated"}
        await platform.ensure_deployment(DeploymentSpec.parse({**spec, "scale": {"replicas": 1}}))

        async def ready() -> bool:
            return bool(platform.reconciler.status("echo")["ready"])

        await eventually(ready, timeout=60)
        h = Harness(platform)
        # a bucket of 5 (the rate), full: five pass, the sixth waits 1/5 s, sent as 1 s
        statuses = [(await h.predict("echo", {"i": i})).status_code for i in range(6)]
        assert statuses == [200] * 5 + [429]
        r = await h.predict("echo", {})
        assert (r.status_code, r.headers["retry-after"]) == (429, "1")
        assert r.json()["error"] == "too_many_requests"
        r = await h.http.get("/api/v1/deployments")
        assert r.status_code == 429, "the REST API shares the token's bucket"
        other = new_token()
        UserStore(platform.store).create_token("admin", hash_token(other), name="other")
        async with client(h, other) as second:
            assert (await second.get("/api/v1/info")).status_code == 200, "other tokens unaffected"
        clock.advance(0.2)  # one request's worth
        assert (await h.predict("echo", {})).status_code == 200
        assert (await h.predict("echo", {})).status_code == 429
        await h.http.aclose()
    finally:
        await platform.stop()


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

"""Every route of the REST API, found by iterating the app (so new routes are covered at once):
no token 401, a bad token 401, someone else's resource 404 (as if it did not exist), an admin
answered what the route answers its owner (each route's status named in a table). Collections
never show someone else's things."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Harness
from tests.integration.platform.test_dashboard_api import zip_folder
from tests.polling import eventually

pytestmark = pytest.mark.integration

PUBLIC = {"/api/v1/health", "/health", "/v2", "/v2/health/live", "/v2/health/ready"}
"""Routes that need no token at all (liveness probes, the Open Inference Protocol's server
metadata)."""

ADMIN_ONLY = {
    ("GET", "/metrics"),
    ("POST", "/api/v1/users"),
    ("GET", "/api/v1/envs"),
    ("POST", "/api/v1/envs/prune"),
}
"""Collections a non-admin may not read or change at all: 403 rather than a filtered view."""

USER_COLLECTION_WRITES = {
    # Bob writes to a collection with no body at all: the body is checked before anything is
    # made or looked up, so each answers its precise validation error, never 401/403/500.
    ("POST", "/api/v1/deployments"): 422,
    ("POST", "/api/v1/tokens"): 422,
    ("POST", "/api/v1/models"): 400,  # not a zip: the content type is checked first
    ("POST", "/api/v1/models/inspect"): 422,
    ("POST", "/api/v1/advise"): 422,
    ("POST", "/api/v1/buckets"): 422,
    ("POST", "/api/v1/batches"): 422,
    ("PUT", "/system/services"): 400,  # OSCAR reads raw JSON: an empty body is not JSON
    ("POST", "/system/services"): 400,
    ("PUT", "/system/buckets"): 400,
    ("POST", "/system/buckets"): 400,
    ("POST", "/system/volumes"): 400,
}
"""What a plain user's body-less write to a collection answers."""

ADMIN_ANSWERS = {
    ("GET", "/health"): 200,
    ("GET", "/api/v1/health"): 200,
    ("GET", "/metrics"): 200,
    ("GET", "/api/v1/info"): 200,
    ("GET", "/api/v1/resources"): 200,
    ("GET", "/api/v1/export/targets"): 200,
    ("GET", "/system/info"): 200,
    ("GET", "/system/config"): 200,
    ("GET", "/system/status"): 200,
    # collections
    ("GET", "/api/v1/deployments"): 200,
    ("POST", "/api/v1/deployments"): 201,
    ("GET", "/api/v1/users"): 200,
    ("POST", "/api/v1/users"): 201,
    ("GET", "/api/v1/tokens"): 200,
    ("POST", "/api/v1/tokens"): 201,
    ("POST", "/api/v1/models"): 201,
    ("POST", "/api/v1/models/inspect"): 200,
    ("POST", "/api/v1/advise"): 200,
    ("GET", "/api/v1/buckets"): 200,
    ("POST", "/api/v1/buckets"): 201,
    ("GET", "/api/v1/batches"): 200,
    ("POST", "/api/v1/batches"): 201,
    ("GET", "/api/v1/envs"): 200,
    ("POST", "/api/v1/envs/prune"): 200,
    ("GET", "/system/services"): 200,
    ("POST", "/system/services"): 201,
    ("PUT", "/system/services"): 204,
    ("GET", "/system/buckets"): 200,
    ("POST", "/system/buckets"): 201,
    ("PUT", "/system/buckets"): 204,
    ("GET", "/system/volumes"): 200,
    ("POST", "/system/volumes"): 201,
    # Alice's deployment, its jobs, tokens, buckets and objects
    ("GET", "/api/v1/deployments/{name}"): 200,
    ("PUT", "/api/v1/deployments/{name}"): 200,  # its buckets stay Alice's (once a 409 here)
    ("DELETE", "/api/v1/deployments/{name}"): 204,
    ("POST", "/api/v1/deployments/{name}/predict"): 200,
    ("GET", "/api/v1/deployments/{name}/export"): 200,
    ("GET", "/api/v1/deployments/{name}/metrics"): 200,
    ("GET", "/api/v1/deployments/{name}/logs"): 200,
    ("GET", "/api/v1/deployments/{name}/tokens"): 200,
    ("POST", "/api/v1/deployments/{name}/tokens"): 201,
    ("GET", "/api/v1/deployments/{name}/jobs"): 200,
    ("POST", "/api/v1/deployments/{name}/jobs"): 201,
    ("GET", "/api/v1/deployments/{name}/jobs/{job_id}"): 200,
    ("GET", "/api/v1/deployments/{name}/jobs/{job_id}/result"): 200,
    # Alice's job succeeded: only a failed one may be retried (the state is checked once the
    # admin has been let in, which this 409 shows)
    ("POST", "/api/v1/deployments/{name}/jobs/{job_id}/retry"): 409,
    ("GET", "/api/v1/users/{name}"): 200,
    ("PUT", "/api/v1/users/{name}/quotas"): 200,
    ("DELETE", "/api/v1/users/{name}"): 409,  # Alice still owns deployments and buckets
    ("DELETE", "/api/v1/tokens/{token_id}"): 204,
    ("GET", "/api/v1/buckets/{bucket}/objects"): 200,
    ("PUT", "/api/v1/buckets/{bucket}/objects/{key}"): 201,
    ("GET", "/api/v1/buckets/{bucket}/objects/{key}"): 200,
    ("DELETE", "/api/v1/buckets/{bucket}/objects/{key}"): 204,
    ("GET", "/api/v1/batches/{batch_id}"): 200,
    ("GET", "/api/v1/batches/{batch_id}/failures"): 200,
    ("POST", "/api/v1/batches/{batch_id}/retry"): 200,
    ("DELETE", "/api/v1/batches/{batch_id}"): 200,
    # Alice's OSCAR service, its jobs, buckets and volume
    ("GET", "/system/services/{name}"): 200,
    ("DELETE", "/system/services/{name}"): 204,
    ("POST", "/run/{name}"): 200,
    ("POST", "/job/{name}"): 201,
    ("GET", "/system/logs/{name}"): 200,
    ("DELETE", "/system/logs/{name}"): 204,
    ("GET", "/system/logs/{name}/{job_id}"): 200,
    ("DELETE", "/system/logs/{name}/{job_id}"): 204,
    ("GET", "/system/buckets/{name}"): 200,
    ("POST", "/system/buckets/{name}/presign"): 200,
    ("DELETE", "/system/buckets/{name}"): 409,  # Alice's deployment still reads it
    ("GET", "/system/volumes/{name}"): 200,
    ("DELETE", "/system/volumes/{name}"): 204,
    # the Open Inference Protocol on Alice's deployment
    ("GET", "/v2"): 200,
    ("GET", "/v2/health/live"): 200,
    ("GET", "/v2/health/ready"): 200,
    ("GET", "/v2/models/{name}"): 200,
    ("GET", "/v2/models/{name}/ready"): 200,
    ("GET", "/v2/models/{name}/versions/{version}"): 200,
    ("GET", "/v2/models/{name}/versions/{version}/ready"): 200,
    # asyncecho declares no tensors: the admin is let in, and told so (not a 401/404)
    ("POST", "/v2/models/{name}/infer"): 400,
    ("POST", "/v2/models/{name}/versions/{version}/infer"): 400,
    # DEEPaaS on Alice's DEEPaaS deployment, and her training
    ("GET", "/deepaas/{deployment}/"): 200,
    ("GET", "/deepaas/{deployment}/v2/"): 200,
    ("GET", "/deepaas/{deployment}/v2/debug/"): 204,
    ("GET", "/deepaas/{deployment}/api"): 200,
    ("GET", "/deepaas/{deployment}/api/static/{asset}"): 200,
    ("GET", "/deepaas/{deployment}/swagger.json"): 200,
    ("GET", "/deepaas/{deployment}/v2/models/"): 200,
    ("GET", "/deepaas/{deployment}/v2/models/{model}/"): 200,
    ("POST", "/deepaas/{deployment}/v2/models/{model}/predict/"): 200,
    ("GET", "/deepaas/{deployment}/v2/models/{model}/train/"): 200,
    ("POST", "/deepaas/{deployment}/v2/models/{model}/train/"): 200,
    ("GET", "/deepaas/{deployment}/v2/models/{model}/train/{uuid}"): 200,
    ("DELETE", "/deepaas/{deployment}/v2/models/{model}/train/{uuid}"): 200,
}
"""What each route answers the admin acting on Alice's things, given :meth:`Alice.call`."""

TRAFFIC = {"requests_per_hour": 60, "pattern": "spaced", "latency_slo_ms": 100}
INFER = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1.0]}]}


class Alice:
    """Alice's resources, which Bob must not be able to tell exist."""

    user = "alice"
    deployment = "alice-dep"
    bucket = "alice-in"
    key = "a.txt"
    service = "alice-svc"
    volume = "alice-vol"
    deepaas = "alice-deepaas"
    module = "deepaas_files"

    def __init__(self) -> None:
        self.token_id = 0
        self.job_id = ""
        self.spec: dict[str, Any] = {}
        self.token = ""
        self.service_job = ""
        self.batch_id = ""
        self.version = ""
        self.training = ""

    def value(self, segment: str, param: str) -> str | None:
        """The value of path parameter ``param`` that follows ``segment`` in a route's path."""
        return {
            ("deployments", "name"): self.deployment,
            # OSCAR: services (deployments with a service definition) and their jobs
            ("services", "name"): self.service,
            ("run", "name"): self.service,
            ("job", "name"): self.service,
            ("logs", "name"): self.service,
            ("{name}", "job_id"): self.service_job,
            ("users", "name"): self.user,
            ("tokens", "token_id"): str(self.token_id),
            ("buckets", "bucket"): self.bucket,
            ("buckets", "name"): self.bucket,  # OSCAR: /system/buckets/{name}
            ("volumes", "name"): self.volume,
            ("objects", "key"): self.key,
            ("jobs", "job_id"): self.job_id,
            ("batches", "batch_id"): self.batch_id,
            # the Open Inference Protocol: /v2/models/{name}/versions/{version}
            ("models", "name"): self.deployment,
            ("versions", "version"): self.version,
            # DEEPaaS: /deepaas/{deployment}/v2/models/{model}/train/{uuid}
            ("deepaas", "deployment"): self.deepaas,
            ("models", "model"): self.module,
            ("train", "uuid"): self.training,
            ("static", "asset"): "swagger-ui.css",
        }.get((segment, param))

    def body(self, method: str, path: str) -> dict[str, Any] | None:
        """A valid body for routes that declare one, so a 422 cannot hide the 404."""
        return {
            ("PUT", "/api/v1/deployments/{name}"): self.spec,
            ("POST", "/api/v1/deployments/{name}/tokens"): {},
            ("PUT", "/api/v1/users/{name}/quotas"): {},
            ("POST", "/api/v1/users"): {"name": "mallory"},
            ("POST", "/api/v1/deployments/{name}/predict"): {"x": 1},
            # a JSON body is refused (400: files come as multipart) only after the 404 check
            ("POST", "/api/v1/deployments/{name}/jobs"): {},
            ("POST", "/system/buckets/{name}/presign"): {
                "object_key": self.key,
                "operation": "download",
            },
            ("POST", "/v2/models/{name}/infer"): INFER,
            ("POST", "/v2/models/{name}/versions/{version}/infer"): INFER,
            ("POST", "/deepaas/{deployment}/v2/models/{model}/predict/"): {"repeat": 1},
            ("POST", "/deepaas/{deployment}/v2/models/{model}/train/"): {},
        }.get((method, path))

    def call(self, method: str, path: str) -> dict[str, Any]:
        """What the admin sends to ``path``: a valid request, so the status is the route's own
        answer and not a validation error."""
        model = self.spec["model"]["path"]
        service = {"name": self.service, "image": "alpine", "script": "echo hi"}
        json_bodies: dict[tuple[str, str], Any] = {
            ("POST", "/api/v1/deployments"): {
                "name": "admin-dep",
                "model": {"path": model},
                "mode": "serverless",
            },
            ("POST", "/api/v1/tokens"): {"user": self.user},
            ("POST", "/api/v1/models/inspect"): {"path": model},
            ("POST", "/api/v1/advise"): {
                "costs": {"load_seconds": 0.1, "service_seconds": [0.01]},
                **TRAFFIC,
            },
            ("POST", "/api/v1/buckets"): {"name": "admin-bucket"},
            ("POST", "/api/v1/batches"): {
                "deployment": self.deployment,
                "input": self.bucket,
                "output": "admin-results",
            },
            ("POST", "/system/services"): {**service, "name": "admin-svc"},
            ("PUT", "/system/services"): {**service, "script": "echo hello"},
            ("POST", "/system/buckets"): {"bucket_name": "admin-oscar"},
            ("PUT", "/system/buckets"): {"bucket_name": "alice-oscar", "visibility": "public"},
            ("POST", "/system/volumes"): {"name": "admin-vol", "size": "1Mi"},
            ("POST", "/api/v1/deployments/{name}/predict"): {"hello": "admin"},
        }
        if (method, path) in json_bodies:
            return {"json": json_bodies[(method, path)]}
        if (method, path) == ("POST", "/api/v1/models"):
            zipped = zip_folder(Path(model), "admin-model")
            return {"content": zipped, "headers": {"content-type": "application/zip"}}
        if (method, path) == ("POST", "/api/v1/deployments/{name}/jobs"):
            return {"files": {"file": ("b.txt", b"hi", "text/plain")}}
        if (method, path) == ("PUT", "/api/v1/buckets/{bucket}/objects/{key}"):
            return {"content": b"hello", "headers": {"content-type": "text/plain"}}
        if (method, path) in {("POST", "/run/{name}"), ("POST", "/job/{name}")}:
            return {"content": b"x"}
        if (method, path) == ("GET", "/api/v1/deployments/{name}/export"):
            return {"params": {"target": "image"}}
        if (method, path) == ("POST", "/deepaas/{deployment}/v2/models/{model}/predict/"):
            return {"params": {"repeat": 1}, "files": {"upload": ("u.txt", b"hi", "text/plain")}}
        return {"json": self.body(method, path)}


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    has_body: bool


class Ghost(Alice):
    """Resources that do not exist at all."""

    user = "nobody"
    deployment = "nobody-dep"
    bucket = "nobody-in"
    service = "nobody-svc"
    volume = "nobody-vol"
    deepaas = "nobody-deepaas"

    def __init__(self) -> None:
        super().__init__()
        self.token_id = 999_999
        self.job_id = "0" * 32
        self.service_job = "0" * 32
        self.batch_id = "0" * 32
        self.version = "0"
        self.training = "0" * 32


GHOST = Ghost()


def routes(app: Any) -> list[Route]:
    """Every operation of the app's OpenAPI document."""
    found = []
    for path, operations in app.openapi()["paths"].items():
        for method, op in operations.items():
            found.append(Route(method.upper(), path, "requestBody" in op))
    return found


def fill(path: str, alice: Alice) -> str | None:
    """``path`` with Alice's resources in its parameters, or None if a parameter is unknown."""
    out = []
    parts = path.split("/")
    for i, part in enumerate(parts):
        m = re.fullmatch(r"\{(\w+)(?::\w+)?\}", part)
        if m is None:
            out.append(part)
            continue
        value = alice.value(parts[i - 1], m.group(1))
        if value is None:
            return None
        out.append(value)
    return "/".join(out)


def client(h: Harness, token: str | None) -> httpx.AsyncClient:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(base_url=h.platform.url, headers=headers, timeout=30)


async def token_for(h: Harness, user: str) -> tuple[int, str]:
    r = await h.http.post("/api/v1/tokens", json={"user": user})
    assert r.status_code == 201, r.text
    return r.json()["id"], r.json()["token"]


@pytest.fixture
async def alice(harness: Harness, fixture_models: Path) -> Alice:
    who = Alice()
    for name in ("alice", "bob"):
        assert (await harness.http.post("/api/v1/users", json={"name": name})).status_code == 201
    _, token = await token_for(harness, "alice")
    who.token = token
    who.token_id, _ = await token_for(harness, "alice")
    async with client(harness, token) as http:
        r = await http.post(
            "/api/v1/deployments",
            json={
                "name": who.deployment,
                "model": {"path": str(fixture_models / "asyncecho")},
                "mode": "dedicated",
                "input": who.bucket,
                "output": "alice-out",
            },
        )
        assert r.status_code == 201, r.text
        who.spec = r.json()["spec"]
        r = await http.put(
            f"/api/v1/buckets/{who.bucket}/objects/{who.key}",
            content=b"hello",
            headers={"content-type": "text/plain"},
        )
        assert r.status_code == 201, r.text
        who.job_id = r.json()["jobs"][0]["id"]

        async def done() -> bool:
            r = await http.get(f"/api/v1/deployments/{who.deployment}/jobs/{who.job_id}")
            return r.json()["state"] == "succeeded"

        await eventually(done, timeout=30)
        r = await http.post("/system/buckets", json={"bucket_name": "alice-oscar"})
        assert r.status_code == 201, r.text
        r = await http.post("/system/volumes", json={"name": who.volume, "size": "1Mi"})
        assert r.status_code == 201, r.text
        service = {"name": who.service, "image": "alpine", "script": "echo hi"}
        r = await http.post("/system/services", json=service)
        assert r.status_code == 201, r.text
        r = await http.post(f"/job/{who.service}", content=b"x")
        assert r.status_code == 201, r.text
        who.service_job = r.json()["jobName"]
        r = await http.post(
            "/api/v1/batches",
            json={"deployment": who.deployment, "input": who.bucket, "output": "alice-results"},
        )
        assert r.status_code == 201, r.text
        who.batch_id = r.json()["id"]
        # the Open Inference Protocol's view of her deployment: its version
        r = await http.get(f"/v2/models/{who.deployment}")
        assert r.status_code == 200, r.text
        who.version = r.json()["versions"][0]
        # a DEEPaaS module, and a training of it
        folder = fixture_models / "deepaas_files"
        r = await http.post(
            "/api/v1/deployments",
            json={
                "name": who.deepaas,
                "model": {"path": str(folder), "loader": "deepaas", "entrypoint": None},
            },
        )
        assert r.status_code == 201, r.text
        r = await http.post(f"/deepaas/{who.deepaas}/v2/models/{who.module}/train/")
        assert r.status_code == 200, r.text
        who.training = r.json()["uuid"]
    return who


def error_of(r: httpx.Response, who: Alice) -> str:
    """The error a 404 names: its code, or (the Open Inference Protocol's body is a message
    alone) its message without the deployment's name."""
    body = r.json()
    if "message" in body:
        return str(body["error"])
    return str(body["error"]).replace(who.deployment, "…")


async def test_every_route_authenticates_and_hides_other_users_things(
    harness: Harness, alice: Alice
) -> None:
    app = harness.platform.app
    table = routes(app)
    assert len(table) > 10
    untold = sorted({(r.method, r.path) for r in table} ^ set(ADMIN_ANSWERS))
    assert not untold, f"ADMIN_ANSWERS and the app's routes differ in: {untold}"
    unknown = [f"{r.method} {r.path}" for r in table if fill(r.path, alice) is None]
    assert not unknown, f"teach Alice.value the path parameters of: {unknown}"
    no_body = [
        f"{r.method} {r.path}"
        for r in table
        if r.has_body and "{" in r.path and alice.body(r.method, r.path) is None
    ]
    assert not no_body, f"teach Alice.body a valid body for: {no_body}"

    _, bob_token = await token_for(harness, "bob")
    anonymous, forged, bob = (
        client(harness, None),
        client(harness, "mp_forged"),
        client(harness, bob_token),
    )
    async with anonymous, forged, bob:
        for route in table:
            method = route.method
            path = fill(route.path, alice)
            assert path is not None
            body = alice.body(method, route.path)
            where = f"{method} {route.path}"
            if route.path in PUBLIC:
                assert (await anonymous.request(method, path)).status_code == 200, where
                continue
            for http in (anonymous, forged):
                r = await http.request(method, path, json=body)
                assert r.status_code == 401, (where, r.status_code, r.text)
                assert r.headers.get("www-authenticate") == "Bearer", where
            r = await bob.request(method, path, json=body)
            if "{" in route.path:
                assert r.status_code == 404, (where, r.status_code, r.text)
                ghost_path = fill(route.path, GHOST)
                assert ghost_path is not None
                missing = await bob.request(method, ghost_path, json=body)
                told = (missing.status_code, error_of(missing, GHOST))
                assert told == (404, error_of(r, alice)), (
                    f"{where}: someone else's answers unlike a missing one"
                )
            elif (method, route.path) in ADMIN_ONLY:
                assert r.status_code == 403, (where, r.status_code, r.text)
            elif method == "GET":
                assert r.status_code == 200, (where, r.status_code, r.text)
                for secret in (alice.deployment, alice.bucket, alice.job_id, '"alice"'):
                    assert secret not in r.text, (where, secret)
            else:
                expected = USER_COLLECTION_WRITES[(method, route.path)]
                assert r.status_code == expected, (where, r.status_code, r.text)

    # the admin may do all of it to Alice's things; deletions last, so the rest still exist
    def removes_a_whole_resource(r: Route) -> bool:
        return r.path.endswith(("/deployments/{name}", "/services/{name}"))

    order = sorted(
        table, key=lambda r: (r.method == "DELETE", removes_a_whole_resource(r), -len(r.path))
    )
    for route in order:
        path = fill(route.path, alice)
        assert path is not None
        r = await harness.http.request(route.method, path, **alice.call(route.method, route.path))
        expected = ADMIN_ANSWERS[(route.method, route.path)]
        assert r.status_code == expected, (route, r.status_code, r.text)
        if route.method == "DELETE" and path.endswith("/" + alice.deployment):
            async with client(harness, alice.token) as http:  # back, for the next deletion
                r = await http.post("/api/v1/deployments", json=alice.spec)
                assert r.status_code == 201, r.text

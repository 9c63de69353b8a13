"""``Client``: every platform operation as a method; server errors come back as the same classes.

The platform's address and token come from arguments, else ``MODELPLANE_URL`` and
``MODELPLANE_TOKEN``, else the local platform (``http://127.0.0.1:8000`` and the token that
``modelplane up`` keeps in its data directory).
"""

from __future__ import annotations

import contextlib
import json
import mimetypes
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from modelplane.errors import ModelplaneError, Unavailable, error_from_dict
from modelplane.settings import DEFAULT_PORT, default_data_dir
from modelplane.spec import DeploymentSpec


def default_url() -> str:
    return os.environ.get("MODELPLANE_URL", f"http://127.0.0.1:{DEFAULT_PORT}").rstrip("/")


def default_token() -> str | None:
    token = os.environ.get("MODELPLANE_TOKEN")
    if token:
        return token
    path = default_data_dir() / "admin.token"
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


@dataclass(frozen=True)
class Prediction:
    status: int
    content_type: str
    content: bytes

    def json(self) -> Any:
        import orjson

        return orjson.loads(self.content)

    @property
    def is_json(self) -> bool:
        return self.content_type.startswith("application/json")


class Client:
    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = (url or default_url()).rstrip("/")
        self.token = token if token is not None else default_token()
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -----------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            resp = self._http.request(method, path, **kw)
        except httpx.ConnectError:
            raise Unavailable(
                f"cannot reach the platform at {self.url}",
                hint="start it with `modelplane up`, or set MODELPLANE_URL",
            ) from None
        except httpx.TimeoutException:
            raise Unavailable(f"the platform at {self.url} did not answer in time") from None
        if resp.status_code >= 400:
            try:
                body = resp.json()
            except ValueError:
                body = {"message": resp.text[:500] or resp.reason_phrase}
            if not isinstance(body, dict):
                body = {"message": str(body)}
            raise error_from_dict(resp.status_code, body, retry_after=_retry_after(resp))
        return resp

    # -- deployments --------------------------------------------------------------------------
    def deploy(
        self, spec: DeploymentSpec | dict[str, Any], *, update: bool = False
    ) -> dict[str, Any]:
        if isinstance(spec, dict):
            spec = DeploymentSpec.parse(spec)
        body = spec.model_dump(mode="json")
        if update:
            return self._request("PUT", f"/api/v1/deployments/{spec.name}", json=body).json()
        return self._request("POST", "/api/v1/deployments", json=body).json()

    def deployments(self) -> list[dict[str, Any]]:
        return self._request("GET", "/api/v1/deployments").json()

    def get(self, name: str) -> dict[str, Any]:
        return self._request("GET", f"/api/v1/deployments/{name}").json()

    def delete(self, name: str) -> None:
        self._request("DELETE", f"/api/v1/deployments/{name}")

    def service_times(self, name: str) -> list[float]:
        """The service times (seconds) of the deployment's most recent answers, oldest first,
        as the gateway measured them (from the metrics route)."""
        resp = self._request("GET", f"/api/v1/deployments/{name}/metrics")
        return [float(x) for x in resp.json().get("service_seconds", [])]

    def logs(self, name: str, tail: int = 200) -> list[str]:
        resp = self._request("GET", f"/api/v1/deployments/{name}/logs", params={"tail": tail})
        return list(resp.json()["lines"])

    def predict(
        self,
        name: str,
        inputs: Any = None,
        *,
        file: str | Path | None = None,
        content_type: str | None = None,
        field: str = "image",
        files: list[tuple[str, str | Path]] | None = None,
        fields: list[tuple[str, str]] | None = None,
    ) -> Prediction:
        """JSON ``inputs``; or a multipart form: ``file`` as field ``field``, ``files`` as
        ``(field, path)`` pairs, ``fields`` as ``(name, value)`` pairs (repeats kept)."""
        path = f"/api/v1/deployments/{name}/predict"
        uploads = list(files or [])
        if file is not None:
            uploads.insert(0, (field, file))
        merged: dict[str, Any] = {}  # a repeated name becomes a list
        for key, value in fields or []:
            old = merged.get(key)
            merged[key] = (
                value
                if old is None
                else [*old, value]
                if isinstance(old, list)
                else [
                    old,
                    value,
                ]
            )
        if uploads:
            with contextlib.ExitStack() as stack:
                parts: list[tuple[str, Any]] = []
                for key, where in uploads:
                    p = Path(where)
                    ctype = (
                        content_type
                        or mimetypes.guess_type(p.name)[0]
                        or "application/octet-stream"
                    )
                    parts.append((key, (p.name, stack.enter_context(open(p, "rb")), ctype)))
                resp = self._request("POST", path, files=parts, data=merged)
        elif fields:  # no file: the fields as a JSON object
            resp = self._request("POST", path, json=merged)
        else:
            import orjson

            resp = self._request(
                "POST",
                path,
                content=orjson.dumps(inputs),
                headers={"content-type": "application/json"},
            )
        return Prediction(resp.status_code, resp.headers.get("content-type", ""), resp.content)

    # -- model environments ----------------------------------------------------------------------
    def envs(self) -> list[dict[str, Any]]:
        """The per-model Python environments on the platform (admin only)."""
        return list(self._request("GET", "/api/v1/envs").json())

    def prune_envs(self) -> dict[str, Any]:
        """Remove the environments no deployment uses; ``{"removed": [...], "freed_bytes"}``."""
        return dict(self._request("POST", "/api/v1/envs/prune").json())

    # -- jobs and buckets -----------------------------------------------------------------------
    def upload(self, name: str, files: list[str | Path], prefix: str = "") -> list[dict[str, Any]]:
        """Upload files to the deployment's input bucket; returns the jobs they became."""
        opened = []
        try:
            parts = []
            for f in files:
                path = Path(f)
                handle = open(path, "rb")  # noqa: SIM115 - closed below
                opened.append(handle)
                ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                parts.append(("files", (path.name, handle, ctype)))
            resp = self._request(
                "POST",
                f"/api/v1/deployments/{name}/jobs",
                files=parts,
                data={"prefix": prefix} if prefix else None,
            )
        finally:
            for handle in opened:
                handle.close()
        return list(resp.json()["jobs"])

    def jobs(
        self, name: str, state: str | None = None, limit: int = 100, offset: int = 0
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if state:
            params["state"] = state
        return self._request("GET", f"/api/v1/deployments/{name}/jobs", params=params).json()

    def job(self, name: str, job_id: str) -> dict[str, Any]:
        return self._request("GET", f"/api/v1/deployments/{name}/jobs/{job_id}").json()

    def job_result(self, name: str, job_id: str) -> tuple[bytes, str, str]:
        """``(content, content_type, output_key)`` of a succeeded job."""
        resp = self._request("GET", f"/api/v1/deployments/{name}/jobs/{job_id}/result")
        return resp.content, resp.headers.get("content-type", ""), resp.headers["x-output-key"]

    def buckets(self) -> list[dict[str, Any]]:
        return self._request("GET", "/api/v1/buckets").json()

    def create_bucket(self, name: str) -> dict[str, Any]:
        return self._request("POST", "/api/v1/buckets", json={"name": name}).json()

    def put_object(
        self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> dict[str, Any]:
        return self._request(
            "PUT",
            f"/api/v1/buckets/{bucket}/objects/{key}",
            content=data,
            headers={"content-type": content_type},
        ).json()

    def objects(self, bucket: str, prefix: str = "") -> list[dict[str, Any]]:
        resp = self._request("GET", f"/api/v1/buckets/{bucket}/objects", params={"prefix": prefix})
        return list(resp.json()["objects"])

    def get_object(self, bucket: str, key: str) -> bytes:
        return self._request("GET", f"/api/v1/buckets/{bucket}/objects/{key}").content

    # -- batch runs
    def start_batch(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /api/v1/batches``: ``deployment`` or ``model``, ``input``, ``output``, …"""
        return self._request("POST", "/api/v1/batches", json=body).json()

    def batch(self, batch_id: str, wait: float = 0.0) -> dict[str, Any]:
        """The run; ``wait`` > 0: answered once it has finished, or after ``wait`` seconds."""
        params = {"wait": wait} if wait > 0 else None
        return self._request("GET", f"/api/v1/batches/{batch_id}", params=params).json()

    def batches(self) -> list[dict[str, Any]]:
        return self._request("GET", "/api/v1/batches").json()["batches"]

    def batch_failures(self, batch_id: str, limit: int = 100, offset: int = 0) -> list[Any]:
        params = {"limit": limit, "offset": offset}
        resp = self._request("GET", f"/api/v1/batches/{batch_id}/failures", params=params)
        return resp.json()["failures"]

    def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        return self._request("DELETE", f"/api/v1/batches/{batch_id}").json()

    def retry_batch(self, batch_id: str) -> dict[str, Any]:
        return self._request("POST", f"/api/v1/batches/{batch_id}/retry").json()

    # -- users, tokens and resources ----------------------------------------------------------
    def users(self) -> list[dict[str, Any]]:
        return self._request("GET", "/api/v1/users").json()

    def user(self, name: str) -> dict[str, Any]:
        return self._request("GET", f"/api/v1/users/{name}").json()

    def add_user(
        self, name: str, *, admin: bool = False, quotas: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        body = {"name": name, "admin": admin, "quotas": quotas or {}}
        return self._request("POST", "/api/v1/users", json=body).json()

    def set_quotas(self, name: str, quotas: dict[str, Any]) -> dict[str, Any]:
        return self._request("PUT", f"/api/v1/users/{name}/quotas", json=quotas).json()

    def remove_user(self, name: str) -> None:
        self._request("DELETE", f"/api/v1/users/{name}")

    def tokens(self, user: str | None = None) -> list[dict[str, Any]]:
        params = {"user": user} if user else None
        return self._request("GET", "/api/v1/tokens", params=params).json()

    def create_token(
        self, *, user: str | None = None, name: str = "", expires_in_days: float | None = None
    ) -> dict[str, Any]:
        """A new API token; the secret is in ``["token"]`` and is shown only this once."""
        body = {"user": user, "name": name, "expires_in_days": expires_in_days}
        return self._request("POST", "/api/v1/tokens", json=body).json()

    def revoke_token(self, token_id: int) -> None:
        self._request("DELETE", f"/api/v1/tokens/{token_id}")

    def deployment_token(
        self, deployment: str, *, name: str = "", expires_in_days: float | None = None
    ) -> dict[str, Any]:
        """An inference token: predictions with ``deployment`` only."""
        body = {"name": name, "expires_in_days": expires_in_days}
        return self._request("POST", f"/api/v1/deployments/{deployment}/tokens", json=body).json()

    def deployment_tokens(self, deployment: str) -> list[dict[str, Any]]:
        return self._request("GET", f"/api/v1/deployments/{deployment}/tokens").json()

    def resources(self) -> dict[str, Any]:
        return self._request("GET", "/api/v1/resources").json()

    # -- platform -----------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return self._request("GET", "/api/v1/health").json()

    def info(self) -> dict[str, Any]:
        return self._request("GET", "/api/v1/info").json()

    def metrics(self) -> str:
        return self._request("GET", "/metrics").text

    def export(self, name: str, target: str, image: str | None = None) -> tuple[bytes, list[str]]:
        """A deployment exported for ``target``: the zip, and what the target cannot express."""
        params = {"target": target} | ({"image": image} if image else {})
        r = self._request("GET", f"/api/v1/deployments/{name}/export", params=params)
        return r.content, json.loads(r.headers.get("x-modelplane-export-warnings", "[]"))


__all__ = ["Client", "ModelplaneError", "Prediction"]


def _retry_after(resp: httpx.Response) -> float | None:
    """The server's ``Retry-After`` in seconds (the delta form it sends), or None."""
    value = resp.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None

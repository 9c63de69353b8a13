"""OSCAR's ``/system/buckets``: the platform's buckets with OSCAR's visibility, and presigned URLs.

A bucket belongs to its creator (the platform's bucket owners, shared with the native API). What
OSCAR adds — ``visibility`` (``private`` | ``restricted`` | ``public``), ``allowed_users`` and
free ``metadata`` — is kept per bucket in ``<data dir>/oscar/.buckets/<name>.json``. Who may use a
bucket (through this API and the S3 endpoint, :mod:`modelplane.oscar.s3api`): its owner and
admins always; every user when it is ``public``; the ``allowed_users`` when ``restricted``.

Presigned URLs point at the platform's S3 endpoint and carry an HMAC of (method, bucket, key,
expiry) under a secret of the platform (``<data dir>/oscar/.presign-key``), never a token.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from modelplane.core.deps import Deps
from modelplane.core.jobs import Jobs
from modelplane.errors import AlreadyExists, Forbidden, InvalidInput, NotFound
from modelplane.security import Principal
from modelplane.storage import validate_bucket_name, validate_key
from modelplane.store.users import UserStore

VISIBILITIES = ("private", "restricted", "public")
PRESIGN_MIN, PRESIGN_MAX, PRESIGN_DEFAULT = 1, 7 * 24 * 3600, 900
OPERATIONS = {"download": "GET", "upload": "PUT"}


@dataclass(frozen=True)
class BucketMeta:
    visibility: str = "private"
    allowed_users: tuple[str, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)


def may_access(principal: Principal, owner: str, meta: BucketMeta) -> bool:
    """Whether ``principal`` may read and write a bucket of ``owner`` (pure)."""
    if principal.deployment is not None:
        return False
    if principal.admin or principal.user == owner or meta.visibility == "public":
        return True
    return meta.visibility == "restricted" and principal.user in meta.allowed_users


def sign(key: bytes, method: str, bucket: str, obj: str, expires: int) -> str:
    msg = f"{method}\n{bucket}\n{obj}\n{expires}".encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


class Buckets:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.jobs = Jobs(deps)
        self.root = deps.settings.data_dir / "oscar" / ".buckets"

    # -- metadata -------------------------------------------------------------------------------
    def meta(self, name: str) -> BucketMeta:
        try:
            data = json.loads((self.root / f"{name}.json").read_text())
        except (OSError, ValueError):
            return BucketMeta()
        return BucketMeta(
            data.get("visibility", "private"),
            tuple(data.get("allowed_users") or ()),
            dict(data.get("metadata") or {}),
        )

    def _write_meta(self, name: str, meta: BucketMeta) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{name}.tmp"
        tmp.write_text(
            json.dumps(
                {
                    "visibility": meta.visibility,
                    "allowed_users": list(meta.allowed_users),
                    "metadata": meta.metadata,
                }
            )
        )
        os.replace(tmp, self.root / f"{name}.json")

    def presign_key(self) -> bytes:
        path = self.deps.settings.data_dir / "oscar" / ".presign-key"
        with contextlib.suppress(FileNotFoundError):
            return path.read_bytes()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
        return path.read_bytes()

    # -- access ---------------------------------------------------------------------------------
    async def owner(self, name: str) -> str:
        validate_bucket_name(name)
        owner = await asyncio.to_thread(self.jobs.jobs.bucket_owner, name)
        if owner is None:
            raise NotFound(f"bucket {name!r} does not exist", bucket=name)
        return owner

    async def accessible(self, name: str, principal: Principal) -> tuple[str, BucketMeta]:
        """The owner and metadata of a bucket ``principal`` may use; else 404 (no leak)."""
        owner = await self.owner(name)
        meta = await asyncio.to_thread(self.meta, name)
        if not may_access(principal, owner, meta):
            raise NotFound(f"bucket {name!r} does not exist", bucket=name)
        return owner, meta

    async def owned(self, name: str, principal: Principal) -> str:
        owner, _ = await self.accessible(name, principal)
        if not principal.can_see(owner):
            raise Forbidden(f"only the owner of bucket {name!r} may change it", bucket=name)
        return owner

    # -- the API --------------------------------------------------------------------------------
    def view(self, name: str, owner: str, meta: BucketMeta) -> dict[str, Any]:
        return {
            "bucket_name": name,
            "visibility": meta.visibility,
            "allowed_users": list(meta.allowed_users),
            "owner": owner,
            "metadata": meta.metadata,
        }

    async def list(self, principal: Principal) -> list[dict[str, Any]]:
        rows = await asyncio.to_thread(self.jobs.jobs.buckets, None)
        out = []
        for row in rows:
            meta = await asyncio.to_thread(self.meta, row.name)
            if may_access(principal, row.owner, meta):
                out.append(self.view(row.name, row.owner, meta))
        return out

    async def get(self, name: str, principal: Principal, page: str = "") -> dict[str, Any]:
        owner, meta = await self.accessible(name, principal)
        limit = 1000
        objects = await asyncio.to_thread(
            self.deps.storage.list,  # type: ignore[union-attr]
            name,
            "",
            page or None,
            limit + 1,
        )
        truncated = len(objects) > limit
        objects = objects[:limit]
        out = self.view(name, owner, meta) | {
            "objects": [
                {
                    "object_name": o.key,
                    "size_bytes": o.size,
                    "last_modified": o.last_modified.isoformat(),
                }
                for o in objects
            ],
            "is_truncated": truncated,
            "returned_items": len(objects),
        }
        if truncated:
            out["next_page"] = objects[-1].key
        return out

    async def _checked_meta(self, body: Any) -> tuple[str, BucketMeta]:
        if not isinstance(body, dict):
            raise InvalidInput("The Bucket specification is not valid: a JSON object")
        name = str(body.get("bucket_name") or "").strip("/").split("/", 1)[0]
        if not name:
            raise InvalidInput("bucket_name: required", field="bucket_name")
        validate_bucket_name(name)
        visibility = body.get("visibility") or "private"
        if visibility not in VISIBILITIES:
            raise InvalidInput(
                f"visibility: {visibility!r} is not one of {', '.join(VISIBILITIES)}",
                field="visibility",
            )
        raw_users = body.get("allowed_users") or []
        if not isinstance(raw_users, list):
            raise InvalidInput("allowed_users: a list of user names", field="allowed_users")
        users = [str(u) for u in raw_users]
        store = UserStore(self.deps.store)
        for user in users:
            if await asyncio.to_thread(store.get_user, user) is None:
                raise InvalidInput(
                    f"allowed_users: {user!r} is not a user of this platform", field="allowed_users"
                )
        raw_meta = body.get("metadata") or {}
        if not isinstance(raw_meta, dict):
            raise InvalidInput("metadata: an object of names to values", field="metadata")
        metadata = {str(k): str(v) for k, v in raw_meta.items()}
        return name, BucketMeta(visibility, tuple(users), metadata)

    async def create(self, body: Any, principal: Principal) -> None:
        name, meta = await self._checked_meta(body)
        await self.jobs.ensure_bucket(name, principal.user)  # 409 if someone else owns it
        await asyncio.to_thread(self._write_meta, name, meta)

    def users_of(self, name: str) -> builtins.list[str]:
        """The deployments (services) whose input or outputs are in bucket ``name``."""
        out = []
        for dep_name, dep in list(self.deps.reconciler.deployments.items()):
            spec = dep.spec
            used = {spec.input, spec.output} | (
                {o.bucket for o in spec.files.outputs} if spec.files else set()
            )
            if name in used:
                out.append(dep_name)
        return sorted(out)

    async def update(self, body: Any, principal: Principal) -> None:
        name, meta = await self._checked_meta(body)
        await self.owned(name, principal)
        if self.users_of(name):  # as OSCAR: a service's bucket keeps the service's settings
            raise Forbidden(
                f"bucket {name!r} belongs to service {', '.join(self.users_of(name))}: a bucket "
                "from a service can't be modified",
                bucket=name,
            )
        await asyncio.to_thread(self._write_meta, name, meta)

    async def delete(self, name: str, principal: Principal, *, force: bool = True) -> None:
        """Delete a bucket and its objects (``force``: even if it holds some); one a service
        reads or writes is refused (409), so no service loses its storage."""
        await self.owned(name, principal)
        users = self.users_of(name)
        if users:
            raise AlreadyExists(
                f"bucket {name!r} is used by service {', '.join(users)}",
                hint="remove the service first",
                bucket=name,
            )
        storage = self.deps.storage
        assert storage is not None
        with contextlib.suppress(NotFound):
            await asyncio.to_thread(storage.delete_bucket, name, force=force)
        await asyncio.to_thread(self.jobs.jobs.forget_bucket, name)
        with contextlib.suppress(FileNotFoundError):
            (self.root / f"{name}.json").unlink()

    async def presign(
        self, name: str, body: Any, principal: Principal, base_url: str, now: float | None = None
    ) -> dict[str, Any]:
        await self.accessible(name, principal)
        if not isinstance(body, dict):
            raise InvalidInput("Invalid presign request: a JSON object")
        key = str(body.get("object_key") or "")
        if not key:
            raise InvalidInput("Object key cannot be empty", field="object_key")
        validate_key(key)
        operation = body.get("operation")
        if not isinstance(operation, str) or operation not in OPERATIONS:
            raise InvalidInput(
                f"Unsupported operation {operation!r}. Allowed values are 'upload' or 'download'",
                field="operation",
            )
        given = body.get("expires_in") or body.get("expires") or PRESIGN_DEFAULT
        if isinstance(given, bool) or not isinstance(given, int | float | str):
            raise InvalidInput("expires_in: a number of seconds", field="expires_in")
        try:
            expires_in = int(given)
        except (ValueError, OverflowError):
            raise InvalidInput(
                f"expires_in: {given!r} is not a number of seconds", field="expires_in"
            ) from None
        if not PRESIGN_MIN <= expires_in <= PRESIGN_MAX:
            raise InvalidInput(
                f"Invalid expiration requested: {expires_in}. Allowed range is "
                f"{PRESIGN_MIN}-{PRESIGN_MAX} seconds",
                field="expires_in",
            )
        method = OPERATIONS[operation]
        expires = int(now if now is not None else time.time()) + expires_in
        signature = sign(await asyncio.to_thread(self.presign_key), method, name, key, expires)
        query = urlencode({"mp-expires": expires, "mp-signature": signature})
        url = f"{base_url.rstrip('/')}/s3/{name}/{quote(key)}?{query}"
        headers = {"Content-Type": str(body["content_type"])} if body.get("content_type") else {}
        return {
            "object_key": key,
            "operation": operation,
            "method": method,
            "url": url,
            "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires)),
            "headers": headers,
        }

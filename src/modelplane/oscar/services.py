"""OSCAR services on top of deployments: create, update, read, list, remove, and who may see them.

A service is a deployment (owned, quota-checked and reconciled like any other) plus a record of
its OSCAR definition (:mod:`modelplane.oscar.records`) and an inference token scoped to it: the
"service token" OSCAR clients send to ``/run`` and ``/job``.

Visibility, as OSCAR's: ``private`` services are seen and run by their owner (and admins),
``public`` ones by every user, ``restricted`` ones also by the users in ``allowed_users``. Only the
owner (or an admin) may change or remove a service. A service someone may not see is 404, as a
missing one is.
"""

from __future__ import annotations

import asyncio
from typing import Any

from modelplane.core.accounts import Accounts
from modelplane.core.deployments import Deployments
from modelplane.core.deps import Deps
from modelplane.core.jobs import Jobs
from modelplane.errors import AlreadyExists, InvalidInput, ModelplaneError, NotFound
from modelplane.oscar import links
from modelplane.oscar.fdl import OscarService, service_from_dict
from modelplane.oscar.records import Record, ServiceRecords
from modelplane.oscar.volumes import Volumes
from modelplane.security import Principal
from modelplane.spec.paths import StoragePath, find_cycle
from modelplane.storage import LocalBucketStore
from modelplane.store.users import UserStore

TOKEN_NAME = "oscar-service"
Links = list[dict[str, str]]


class ServiceNotFound(NotFound):
    code = "service_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"service {name!r} does not exist", service=name)


def records_of(deps: Deps) -> ServiceRecords:
    return ServiceRecords(deps.settings.data_dir / "oscar")


def may_use(principal: Principal, owner: str, definition: dict[str, Any]) -> bool:
    """Whether ``principal`` may read and run a service owned by ``owner``."""
    if principal.deployment is not None:
        return False
    if principal.admin or principal.user == owner:
        return True
    visibility = definition.get("visibility", "private")
    if visibility == "public":
        return True
    return visibility == "restricted" and principal.user in (definition.get("allowed_users") or [])


class OscarServices:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.records = records_of(deps)
        self.deployments = Deployments(deps)

    # -- reading --------------------------------------------------------------------------------
    async def record(self, name: str) -> tuple[Record, str]:
        """The service's record and its owner, whoever asks (the caller checks access)."""
        row = await asyncio.to_thread(self.deps.store.get_deployment, name)
        record = await asyncio.to_thread(self.records.read, name)
        if row is None or record is None:
            raise ServiceNotFound(name)
        return record, row.owner

    async def visible(self, name: str, principal: Principal) -> tuple[Record, str]:
        record, owner = await self.record(name)
        if not may_use(principal, owner, record.definition):
            raise ServiceNotFound(name)
        return record, owner

    def view(self, record: Record, owner: str) -> dict[str, Any]:
        """The definition as OSCAR gives it back: with its token, owner and storage providers."""
        out = dict(record.definition)
        if record.script is not None:
            out["script"] = record.script
        out["token"] = record.token
        out["owner"] = owner
        out["storage_providers"] = out.get("storage_providers") or {}
        out.setdefault("input", [])
        out.setdefault("output", [])
        return out

    async def get(self, name: str, principal: Principal) -> dict[str, Any]:
        return self.view(*await self.visible(name, principal))

    async def list(self, principal: Principal) -> list[dict[str, Any]]:
        names = await asyncio.to_thread(self.records.names)
        rows = await asyncio.to_thread(self.deps.store.list_deployments, None)
        owners = {r.name: r.owner for r in rows}
        out = []
        for name in names:
            record = await asyncio.to_thread(self.records.read, name)
            owner = owners.get(name)
            if record is None or owner is None:
                continue  # removed through the native API: not a service any more
            if may_use(principal, owner, record.definition):
                out.append(self.view(record, owner))
        return out

    # -- changing -------------------------------------------------------------------------------
    async def _checked(self, data: Any) -> tuple[OscarService, Links]:
        """Validate a definition against the platform: users it names, loops it would close,
        the folders it links (mount, volume)."""
        service = service_from_dict(data)
        users = UserStore(self.deps.store)
        for user in service.allowed_users:
            if await asyncio.to_thread(users.get_user, user) is None:
                raise InvalidInput(
                    f"allowed_users: {user!r} is not a user of this platform",
                    hint="list modelplane user names (modelplane users list)",
                    field="allowed_users",
                )
        graph: dict[str, tuple[StoragePath, tuple[StoragePath, ...]]] = {}
        for other, dep in list(self.deps.reconciler.deployments.items()):
            spec = dep.spec
            if spec.files is not None:
                graph[other] = (spec.files.input, spec.files.outputs)
            elif spec.input is not None and spec.output is not None:
                graph[other] = (StoragePath(bucket=spec.input), (StoragePath(bucket=spec.output),))
        files = service.files()
        graph[service.name] = (files.input, files.outputs)
        loop = find_cycle(graph, service.name)
        if loop is not None:
            raise InvalidInput(
                f"these services would trigger each other forever: {' -> '.join(loop)} "
                "(an output path of each is the input path of the next)",
                hint="give one of them an output path outside the others' input paths",
                field="output",
            )
        storage = self.deps.storage
        root = storage.root if isinstance(storage, LocalBucketStore) else None
        return service, links.plan(service, root, self.deps.settings.data_dir)

    def _volumes(self) -> Volumes:
        return Volumes(self.deps)

    async def _mount_bucket(self, service: OscarService, owner: str) -> None:
        """The mounted bucket is the owner's (created if new; someone else's is a 409)."""
        if service.mount is not None and self.deps.jobs is not None:
            await Jobs(self.deps).ensure_bucket(service.mount.bucket, owner)

    async def create(self, data: Any, principal: Principal) -> dict[str, Any]:
        service, linked = await self._checked(data)
        name = service.name
        if await asyncio.to_thread(self.deps.store.get_deployment, name) is not None:
            raise AlreadyExists(
                f"a service or deployment named {name!r} already exists", service=name
            )
        await self._mount_bucket(service, principal.user)
        volumes = self._volumes()
        await asyncio.to_thread(volumes.check_service, service, principal.user)
        folder = await asyncio.to_thread(
            self.records.write, name, service.definition(), service.script
        )
        try:
            await asyncio.to_thread(volumes.attach, service, principal.user)
            await asyncio.to_thread(links.write, folder, linked)
            spec = service.to_spec(folder)
            await self.deployments.create(spec, principal)
        except BaseException:
            await asyncio.to_thread(self.records.remove, name)
            raise
        token = await Accounts(self.deps).create_token(
            principal, user=principal.user, name=TOKEN_NAME, deployment=name
        )
        await asyncio.to_thread(self.records.set_token, name, token["token"])
        return await self.get(name, principal)

    async def update(self, data: Any, principal: Principal, name: str | None = None) -> None:
        """Replace a definition (OSCAR's ``PUT /system/services`` names it in the body)."""
        service, linked = await self._checked(data)
        if name is not None and service.name != name:
            raise InvalidInput(f"name: the body names {service.name!r} but the URL {name!r}")
        row = await self.deployments.get_row(service.name, principal)  # owner or admin only
        before = await asyncio.to_thread(self.records.read, service.name)
        if before is None:
            raise ServiceNotFound(service.name)
        await self._mount_bucket(service, row.owner)
        volumes = self._volumes()
        await asyncio.to_thread(volumes.check_service, service, row.owner)
        folder = await asyncio.to_thread(
            self.records.write, service.name, service.definition(), service.script
        )
        try:
            await asyncio.to_thread(volumes.attach, service, row.owner)
            await asyncio.to_thread(links.write, folder, linked)
            spec = service.to_spec(folder)
            await self.deployments.update(service.name, spec, _as_owner(principal, row.owner))
        except ModelplaneError:
            await asyncio.to_thread(
                self.records.write, service.name, before.definition, before.script
            )
            raise

    async def delete(self, name: str, principal: Principal) -> None:
        record, owner = await self.record(name)
        if not principal.can_see(owner):  # the same 404 as for a missing service: no leak
            raise ServiceNotFound(name)
        await self.deployments.delete(name, principal)  # owner or admin; revokes its token
        await asyncio.to_thread(self.records.remove, name)
        await asyncio.to_thread(self._volumes().detach, record.definition, name)


def _as_owner(principal: Principal, owner: str) -> Principal:
    """An admin updating someone else's service: the buckets stay the owner's."""
    if principal.user == owner:
        return principal
    return Principal(owner, admin=principal.admin, token=principal.token)

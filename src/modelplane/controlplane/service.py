"""Deployment operations behind the REST routes: ownership checks, validation, status views."""

from __future__ import annotations

import asyncio
from typing import Any

from modelplane.controlplane.deps import Deps
from modelplane.errors import DeploymentNotFound, InvalidSpec
from modelplane.model.loader import get_loader
from modelplane.security import Principal
from modelplane.spec import DeploymentSpec
from modelplane.store.models import DeploymentRow


class Deployments:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def _check_model(self, spec: DeploymentSpec) -> None:
        ref = spec.model
        try:
            get_loader(ref.loader, ref.path, ref.entrypoint).check(ref.path, ref.entrypoint)
        except InvalidSpec as exc:
            raise InvalidSpec(exc.message, hint=exc.hint, field="model.path") from None

    async def create(self, spec: DeploymentSpec, principal: Principal) -> dict[str, Any]:
        self._check_model(spec)
        row = await asyncio.to_thread(
            self.deps.store.create_deployment,
            spec.name,
            principal.user,
            spec.model_dump(mode="json"),
        )
        await self.deps.reconciler.sync()  # the gateway knows the deployment before we answer
        self.deps.reconciler.wake()
        return self.view(row)

    async def update(self, name: str, spec: DeploymentSpec, principal: Principal) -> dict[str, Any]:
        await self.get_row(name, principal)
        if spec.name != name:
            raise InvalidSpec(
                f"name: the spec names {spec.name!r} but the URL names {name!r}", field="name"
            )
        self._check_model(spec)
        row = await asyncio.to_thread(
            self.deps.store.update_deployment, name, spec.model_dump(mode="json")
        )
        await self.deps.reconciler.sync()
        self.deps.reconciler.wake()
        return self.view(row)

    async def get_row(self, name: str, principal: Principal) -> DeploymentRow:
        row = await asyncio.to_thread(self.deps.store.get_deployment, name)
        if row is None or not principal.can_see(row.owner):
            raise DeploymentNotFound(name)  # the same answer whether missing or someone else's
        return row

    async def get(self, name: str, principal: Principal, events: bool = True) -> dict[str, Any]:
        row = await self.get_row(name, principal)
        view = self.view(row)
        if events:
            rows = await asyncio.to_thread(self.deps.store.events, name, 30)
            view["events"] = [
                {"at": e.at.isoformat(), "kind": e.kind, "replica": e.replica, "message": e.message}
                for e in rows
            ]
        return view

    async def list(self, principal: Principal) -> list[dict[str, Any]]:
        owner = None if principal.admin else principal.user
        rows = await asyncio.to_thread(self.deps.store.list_deployments, owner)
        return [self.view(r) for r in rows]

    async def delete(self, name: str, principal: Principal) -> None:
        await self.get_row(name, principal)
        await asyncio.to_thread(self.deps.store.delete_deployment, name)
        await self.deps.reconciler.sync()
        self.deps.logs.remove(name)

    def view(self, row: DeploymentRow) -> dict[str, Any]:
        return {
            "name": row.name,
            "owner": row.owner,
            "generation": row.generation,
            "created_at": row.created_at.isoformat(),
            "updated_at": row.updated_at.isoformat(),
            "spec": row.spec,
            "status": self.deps.reconciler.status(row.name),
        }

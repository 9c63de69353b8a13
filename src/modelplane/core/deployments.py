"""Deployment operations behind the REST and OSCAR routes: ownership, validation, status views."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from modelplane.core.deps import Deps
from modelplane.errors import DeploymentNotFound, InvalidSpec
from modelplane.model.loader import get_loader
from modelplane.security import Principal
from modelplane.spec import DeploymentSpec
from modelplane.store.models import DeploymentRow
from modelplane.store.users import UserStore


class Deployments:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def check_model(self, spec: DeploymentSpec) -> None:
        ref = spec.model
        try:
            get_loader(ref.loader, ref.path, ref.entrypoint).check(ref.path, ref.entrypoint)
        except InvalidSpec as exc:
            raise InvalidSpec(exc.message, hint=exc.hint, field="model.path") from None

    def check_upload_owner(self, spec: DeploymentSpec, owner: str) -> None:
        """A model folder uploaded as a zip (``POST /api/v1/models``) deploys only for the user
        who uploaded it: replicas may see the uploads folder, users never each other's."""
        uploads = self.deps.settings.uploads_dir.resolve()
        real = Path(spec.model.path).resolve()
        if real.is_relative_to(uploads) and not real.is_relative_to(uploads / owner):
            raise InvalidSpec(
                "model.path: that uploaded model folder belongs to another user",
                hint="upload the model yourself (POST /api/v1/models) and deploy that folder",
                field="model.path",
            )

    async def _ensure_buckets(self, spec: DeploymentSpec, owner: str) -> None:
        """The deployment's buckets, made for (or checked against) its owner — not whoever
        edits it: an admin changing a user's deployment does not take the user's buckets."""
        if spec.input is None or spec.output is None or self.deps.jobs is None:
            return
        from modelplane.core.jobs import Jobs

        jobs = Jobs(self.deps)
        names = [spec.input, spec.output]
        if spec.files is not None:
            names += [o.bucket for o in spec.files.outputs]
        for name in dict.fromkeys(names):
            await jobs.ensure_bucket(name, owner)

    @contextlib.asynccontextmanager
    async def _admitted(
        self, spec: DeploymentSpec, owner: str, *, creating: bool
    ) -> AsyncIterator[None]:
        """Check that ``spec`` fits the node and ``owner``'s quota (409/403/422 if not) and hold
        the admission lock until the reconciler has it, so racing deploys cannot over-commit."""
        book = self.deps.reconciler.reservations
        if book is None:
            yield
            return
        async with book.admission:
            book.admit(spec, owner, creating=creating)
            yield

    async def create(self, spec: DeploymentSpec, principal: Principal) -> dict[str, Any]:
        self.check_model(spec)
        self.check_upload_owner(spec, principal.user)
        async with self._admitted(spec, principal.user, creating=True):
            await self._ensure_buckets(spec, principal.user)
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
        current = await self.get_row(name, principal)
        if spec.name != name:
            raise InvalidSpec(
                f"name: the spec names {spec.name!r} but the URL names {name!r}", field="name"
            )
        self.check_model(spec)
        self.check_upload_owner(spec, current.owner)
        async with self._admitted(spec, current.owner, creating=False):
            await self._ensure_buckets(spec, current.owner)
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
        if self.deps.jobs is not None:
            await asyncio.to_thread(self.deps.jobs.delete_for, name)
        await self.deps.reconciler.sync()
        self.deps.logs.remove(name)
        # its inference tokens die with it: a new deployment of that name must not inherit them
        await asyncio.to_thread(UserStore(self.deps.store).revoke_deployment_tokens, name)
        if self.deps.tokens is not None:
            self.deps.tokens.invalidate()

    def view(self, row: DeploymentRow) -> dict[str, Any]:
        return {
            "name": row.name,
            "owner": row.owner,
            "generation": row.generation,
            "created_at": row.created_at.isoformat(),
            "updated_at": row.updated_at.isoformat(),
            "spec": row.spec,
            "status": self.deps.reconciler.status(row.name),
            "traffic": self.deps.history.summary(row.name) if self.deps.history else None,
        }

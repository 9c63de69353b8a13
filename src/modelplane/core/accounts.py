"""Users, quotas and tokens behind the REST and OSCAR routes: who may do what, and the views.

Admins manage everyone; a user sees and manages only themselves and their own tokens. Someone
else's user or token answers 404, as a missing one would. Every change to a token or a user drops
the token cache, so it takes effect on the very next request.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from modelplane.core.deps import Deps
from modelplane.errors import Conflict, Forbidden, NotFound
from modelplane.resources.amounts import Usage
from modelplane.resources.quota import Quota
from modelplane.resources.reservations import ReservationBook
from modelplane.security import Principal, hash_token, new_token
from modelplane.store.models import TokenRow, UserRow, utcnow
from modelplane.store.users import UserStore


def token_view(row: TokenRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "user": row.user,
        "name": row.name,
        "deployment": row.deployment,
        "created_at": row.created_at.isoformat(),
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
    }


class Accounts:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.users = UserStore(deps.store)

    @property
    def _book(self) -> ReservationBook | None:
        return self.deps.reconciler.reservations

    def _changed(self) -> None:
        if self.deps.tokens is not None:
            self.deps.tokens.invalidate()

    # -- users ----------------------------------------------------------------------------------
    def user_view(self, row: UserRow) -> dict[str, Any]:
        book = self._book
        held = book.usage(row.name) if book else Usage()
        return {
            "name": row.name,
            "admin": row.admin,
            "quotas": Quota.from_dict(row.quotas).to_dict(),
            "usage": held.to_dict(),
            "deployments": sum(
                1 for d in self.deps.reconciler.deployments.values() if d.owner == row.name
            ),
            "created_at": row.created_at.isoformat(),
        }

    async def _visible_user(self, name: str, caller: Principal) -> UserRow:
        row = await asyncio.to_thread(self.users.get_user, name)
        if row is None or not caller.can_see(name):
            raise NotFound(f"user {name!r} does not exist", user=name)
        return row

    @staticmethod
    def _admin_only(caller: Principal, what: str) -> None:
        if not caller.admin:
            raise Forbidden(f"only an admin may {what}")

    async def list_users(self, caller: Principal) -> list[dict[str, Any]]:
        rows = await asyncio.to_thread(self.users.list_users)
        return [self.user_view(r) for r in rows if caller.can_see(r.name)]

    async def get_user(self, name: str, caller: Principal) -> dict[str, Any]:
        return self.user_view(await self._visible_user(name, caller))

    async def create_user(
        self, name: str, admin: bool, quotas: dict[str, Any], caller: Principal
    ) -> dict[str, Any]:
        self._admin_only(caller, "add users")
        quota = Quota.from_dict(quotas)
        row = await asyncio.to_thread(
            self.users.create_user, name, admin=admin, quotas=quota.to_dict()
        )
        if self._book is not None:
            self._book.quotas[name] = quota
        return self.user_view(row)

    async def set_quotas(
        self, name: str, quotas: dict[str, Any], caller: Principal
    ) -> dict[str, Any]:
        await self._visible_user(name, caller)
        self._admin_only(caller, "change quotas")
        quota = Quota.from_dict(quotas)
        row = await asyncio.to_thread(self.users.set_quotas, name, quota.to_dict())
        if self._book is not None:
            self._book.quotas[name] = quota
        return self.user_view(row)

    async def delete_user(self, name: str, caller: Principal) -> None:
        await self._visible_user(name, caller)
        self._admin_only(caller, "remove users")
        if name == caller.user:
            raise Conflict("you cannot remove yourself", hint="ask another admin")
        await asyncio.to_thread(self.users.delete_user, name)
        if self._book is not None:
            self._book.quotas.pop(name, None)
        self._changed()

    # -- tokens ---------------------------------------------------------------------------------
    async def create_token(
        self,
        caller: Principal,
        *,
        user: str | None = None,
        name: str = "",
        expires_in_days: float | None = None,
        deployment: str | None = None,
    ) -> dict[str, Any]:
        """A new token, shown once in ``token``; only its hash is kept."""
        owner = user or caller.user
        if user is not None:
            await self._visible_user(user, caller)
        token = new_token()
        expires_at = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
        row = await asyncio.to_thread(
            self.users.create_token,
            owner,
            hash_token(token),
            name=name,
            expires_at=expires_at,
            deployment=deployment,
        )
        self._changed()
        return {**token_view(row), "token": token}

    async def list_tokens(
        self, caller: Principal, user: str | None = None, deployment: str | None = None
    ) -> list[dict[str, Any]]:
        if user is not None:
            await self._visible_user(user, caller)
        elif not caller.admin:
            user = caller.user
        rows = await asyncio.to_thread(self.users.list_tokens, user, deployment)
        return [token_view(r) for r in rows]

    async def revoke_token(self, token_id: int, caller: Principal) -> None:
        row = await asyncio.to_thread(self.users.get_token, token_id)
        if row is None or row.revoked_at is not None or not caller.can_see(row.user):
            raise NotFound(f"token {token_id} does not exist", token=token_id)
        await asyncio.to_thread(self.users.revoke_token, token_id)
        self._changed()

    # -- the node -------------------------------------------------------------------------------
    async def resources(self, caller: Principal) -> dict[str, Any]:
        book = self._book
        if book is None:
            return {}
        view = book.view(None if caller.admin else caller.user)
        row = await asyncio.to_thread(self.users.get_user, caller.user)
        view["you"] = self.user_view(row) if row is not None else None
        return view

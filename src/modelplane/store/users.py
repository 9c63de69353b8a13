"""Users, their quotas and their API tokens, over the same engine as :class:`Store`.

Only a token's SHA-256 is kept. A token may be scoped to one deployment (an inference token):
it then authorises predictions with that deployment and nothing else.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from modelplane.errors import AlreadyExists, Conflict, NotFound
from modelplane.security import Principal
from modelplane.store.db import Store
from modelplane.store.models import BucketRow, DeploymentRow, TokenRow, UserRow, utcnow


class UserStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- users ----------------------------------------------------------------------------------
    def create_user(
        self, name: str, *, admin: bool = False, quotas: dict[str, Any] | None = None
    ) -> UserRow:
        try:
            with self.store.session() as s:
                row = UserRow(name=name, admin=admin, quotas=dict(quotas or {}))
                s.add(row)
                s.flush()
                return row
        except IntegrityError:
            raise AlreadyExists(f"user {name!r} already exists", user=name) from None

    def get_user(self, name: str) -> UserRow | None:
        with self.store.session() as s:
            return s.get(UserRow, name)

    def list_users(self) -> list[UserRow]:
        with self.store.session() as s:
            return list(s.scalars(select(UserRow).order_by(UserRow.name)))

    def set_quotas(self, name: str, quotas: dict[str, Any]) -> UserRow:
        with self.store.session() as s:
            row = s.get(UserRow, name)
            if row is None:
                raise NotFound(f"user {name!r} does not exist", user=name)
            row.quotas = dict(quotas)
            return row

    def delete_user(self, name: str) -> None:
        """Remove a user and their tokens; refused while they own deployments or buckets."""
        with self.store.session() as s:
            row = s.get(UserRow, name)
            if row is None:
                raise NotFound(f"user {name!r} does not exist", user=name)
            owned = list(
                s.scalars(select(DeploymentRow.name).where(DeploymentRow.owner == name))
            ) + list(s.scalars(select(BucketRow.name).where(BucketRow.owner == name)))
            if owned:
                raise Conflict(
                    f"user {name!r} still owns {', '.join(sorted(owned))}",
                    hint="remove their deployments and buckets first",
                    user=name,
                )
            for token in s.scalars(select(TokenRow).where(TokenRow.user == name)):
                s.delete(token)
            s.delete(row)

    # -- tokens ---------------------------------------------------------------------------------
    def create_token(
        self,
        user: str,
        token_hash: str,
        *,
        name: str = "",
        expires_at: datetime | None = None,
        deployment: str | None = None,
    ) -> TokenRow:
        with self.store.session() as s:
            if s.get(UserRow, user) is None:
                raise NotFound(f"user {user!r} does not exist", user=user)
            row = TokenRow(
                user=user, hash=token_hash, name=name, expires_at=expires_at, deployment=deployment
            )
            s.add(row)
            s.flush()
            return row

    def get_token(self, token_id: int) -> TokenRow | None:
        with self.store.session() as s:
            return s.get(TokenRow, token_id)

    def list_tokens(self, user: str | None = None, deployment: str | None = None) -> list[TokenRow]:
        """Tokens that are not revoked, of ``user`` and/or ``deployment`` (None: any)."""
        with self.store.session() as s:
            q = select(TokenRow).where(TokenRow.revoked_at.is_(None)).order_by(TokenRow.id)
            if user is not None:
                q = q.where(TokenRow.user == user)
            if deployment is not None:
                q = q.where(TokenRow.deployment == deployment)
            return list(s.scalars(q))

    def revoke_token(self, token_id: int) -> bool:
        with self.store.session() as s:
            result = s.execute(
                update(TokenRow)
                .where(TokenRow.id == token_id, TokenRow.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def revoke_deployment_tokens(self, deployment: str) -> int:
        """Revoke a deployment's inference tokens (it was removed: a new one of the same name
        must not inherit them)."""
        with self.store.session() as s:
            result = s.execute(
                update(TokenRow)
                .where(TokenRow.deployment == deployment, TokenRow.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def count_deployments(self, owner: str) -> int:
        with self.store.session() as s:
            q = select(func.count()).select_from(DeploymentRow).where(DeploymentRow.owner == owner)
            return int(s.scalar(q) or 0)

    def principal_for(self, token_hash: str) -> Principal | None:
        """The principal of a live token (not revoked, not expired), or None."""
        now = utcnow()
        with self.store.session() as s:
            found = s.execute(
                select(TokenRow, UserRow)
                .join(UserRow, UserRow.name == TokenRow.user)
                .where(TokenRow.hash == token_hash)
            ).first()
            if found is None:
                return None
            token, user = found
            if token.revoked_at is not None or (token.expires_at and token.expires_at <= now):
                return None
            return Principal(
                user.name,
                admin=user.admin,
                deployment=token.deployment,
                token=token.id,
                expires_at=token.expires_at.timestamp() if token.expires_at else None,
            )

"""Leases and cluster-wide values in the store (see :mod:`modelplane.lease` for the rules).

Taking a lease is one conditional UPDATE (or an INSERT when the row is missing), so on PostgreSQL
and SQLite alike two processes racing for an expired lease cannot both succeed.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from modelplane.lease import Lease
from modelplane.store.db import Store
from modelplane.store.models import ClusterValueRow, LeaseRow


def _lease(row: LeaseRow) -> Lease:
    return Lease(row.name, row.holder, row.address, row.term, row.expires_at)


class LeaseStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    def current(self, name: str) -> Lease | None:
        with self.store.session() as s:
            row = s.get(LeaseRow, name)
            return _lease(row) if row else None

    def try_take(self, name: str, holder: str, address: str, now: datetime, ttl: float) -> Lease:
        """Take or renew ``name`` if :func:`modelplane.lease.may_take` allows; return the lease
        as it stands afterwards (ours, or the other holder's)."""
        expires = now + timedelta(seconds=ttl)
        with self.store.session() as s:
            ours = s.execute(
                update(LeaseRow)
                .where(LeaseRow.name == name, LeaseRow.holder == holder)
                .values(address=address, expires_at=expires)
            ).rowcount  # type: ignore[attr-defined]
            if not ours:
                s.execute(
                    update(LeaseRow)
                    .where(LeaseRow.name == name, LeaseRow.expires_at <= now)
                    .values(
                        holder=holder, address=address, expires_at=expires, term=LeaseRow.term + 1
                    )
                )
        try:
            with self.store.session() as s:
                if s.get(LeaseRow, name) is None:
                    row = LeaseRow(
                        name=name, holder=holder, address=address, term=1, expires_at=expires
                    )
                    s.add(row)
        except IntegrityError:
            pass  # another process inserted it first: theirs
        found = self.current(name)
        assert found is not None
        return found

    def give_up(self, name: str, holder: str, now: datetime) -> None:
        """Let the lease run out now (a clean shutdown: a follower takes over at once)."""
        with self.store.session() as s:
            s.execute(
                update(LeaseRow)
                .where(LeaseRow.name == name, LeaseRow.holder == holder)
                .values(expires_at=now)
            )

    # -- cluster-wide values --------------------------------------------------------------------
    def shared_secret(self, key: str) -> str:
        """A random secret every process on this store reads the same (made once, by whoever
        asks first)."""
        with self.store.session() as s:
            row = s.get(ClusterValueRow, key)
            if row is not None:
                return row.value
        try:
            with self.store.session() as s:
                s.add(ClusterValueRow(key=key, value=secrets.token_urlsafe(32)))
        except IntegrityError:
            pass
        with self.store.session() as s:
            value = s.scalar(select(ClusterValueRow.value).where(ClusterValueRow.key == key))
            assert value is not None
            return value

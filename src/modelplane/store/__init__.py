"""Durable state: SQLAlchemy models, Alembic migrations, and the :class:`Store` facade."""

from __future__ import annotations

from modelplane.store.db import Store, open_store
from modelplane.store.models import DeploymentRow, EventRow, TokenRow, UserRow

__all__ = ["DeploymentRow", "EventRow", "Store", "TokenRow", "UserRow", "open_store"]

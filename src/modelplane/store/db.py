"""The store: one narrow facade over SQLAlchemy, migrated by Alembic at open.

SQLite (WAL, one file in the data directory) is the default; a ``postgresql://`` URL keeps the
same tables in PostgreSQL, which several platform processes can share. Methods are synchronous and
short; async callers use ``asyncio.to_thread``.

The PostgreSQL driver is psycopg 3 (``psycopg[binary]``, the ``postgres`` extra): it is the one
the psycopg project develops (psycopg2 only gets fixes), ships binary wheels with libpq inside,
and SQLAlchemy 2 supports it as ``postgresql+psycopg``. A bare ``postgresql://`` URL means it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, delete, event, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from modelplane.errors import (
    DISK_FULL_HINT,
    AlreadyExists,
    DeploymentNotFound,
    InsufficientStorage,
    StoreUnavailable,
)
from modelplane.store.models import DeploymentRow, EventRow, UserRow, utcnow

MIGRATIONS = Path(__file__).with_name("migrations")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


def migrate(engine: Engine) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def normalize_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3; anything else is passed through."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def open_store(url: str) -> Store:
    url = normalize_url(url)
    if url.startswith("postgresql"):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise StoreUnavailable(
                "the PostgreSQL store needs the psycopg driver",
                hint='install it with `pip install "modelplane[postgres]"`',
            ) from None
        # Every statement is short; a dead connection (server restarted) is replaced, not raised.
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    else:
        engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        migrate(engine)
    except OperationalError as exc:
        engine.dispose()
        raise StoreUnavailable(
            f"cannot open the store at {_redact(url)}: {str(exc.orig).strip().splitlines()[0]}",
            hint="check that the database server runs and the URL (user, host, database) is right",
        ) from None
    return Store(engine)


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _disk_full(exc: OperationalError) -> bool:
    """SQLite's SQLITE_FULL ("database or disk is full") or PostgreSQL's disk_full (53100)."""
    orig = exc.orig
    if getattr(orig, "sqlite_errorname", None) == "SQLITE_FULL":
        return True
    return getattr(orig, "sqlstate", None) == "53100" or "disk is full" in str(orig)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@contextmanager
def _full_disk_is_507() -> Iterator[None]:
    try:
        yield
    except OperationalError as exc:
        if not _disk_full(exc):
            raise
        # The transaction was rolled back: the store is as it was before, only not grown.
        raise InsufficientStorage(
            f"the store's disk is full: {str(exc.orig).strip()}", hint=DISK_FULL_HINT
        ) from exc


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with _full_disk_is_507(), self._sessions.begin() as s:
            yield s

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A Core connection in a transaction, for the hot statements that need no ORM; a full
        disk is :class:`InsufficientStorage`, as in :meth:`session`."""
        with _full_disk_is_507(), self.engine.begin() as conn:
            yield conn

    def close(self) -> None:
        self.engine.dispose()

    # -- users ----------------------------------------------------------------------------------
    def ensure_user(self, name: str, *, admin: bool = False) -> UserRow:
        with self.session() as s:
            row = s.get(UserRow, name)
            if row is None:
                row = UserRow(name=name, admin=admin, quotas={})
                s.add(row)
            return row

    # -- deployments --------------------------------------------------------------------------
    def create_deployment(self, name: str, owner: str, spec: dict[str, Any]) -> DeploymentRow:
        try:
            with self.session() as s:
                row = DeploymentRow(name=name, owner=owner, spec=spec)
                s.add(row)
                s.flush()
                return row
        except IntegrityError:
            raise AlreadyExists(
                f"deployment {name!r} already exists",
                hint="choose another name, or update it with `modelplane deploy --update`",
                deployment=name,
            ) from None

    def update_deployment(self, name: str, spec: dict[str, Any]) -> DeploymentRow:
        with self.session() as s:
            row = s.get(DeploymentRow, name)
            if row is None:
                raise DeploymentNotFound(name)
            row.spec = spec
            row.generation += 1
            row.updated_at = utcnow()
            return row

    def get_deployment(self, name: str) -> DeploymentRow | None:
        with self.session() as s:
            return s.get(DeploymentRow, name)

    def list_deployments(self, owner: str | None = None) -> list[DeploymentRow]:
        with self.session() as s:
            q = select(DeploymentRow).order_by(DeploymentRow.name)
            if owner is not None:
                q = q.where(DeploymentRow.owner == owner)
            return list(s.scalars(q))

    def delete_deployment(self, name: str) -> bool:
        with self.session() as s:
            s.execute(delete(EventRow).where(EventRow.deployment == name))
            return s.execute(delete(DeploymentRow).where(DeploymentRow.name == name)).rowcount > 0  # type: ignore[attr-defined]

    # -- events -------------------------------------------------------------------------------
    def add_event(self, deployment: str, kind: str, message: str = "", replica: str = "") -> None:
        with self.session() as s:
            s.add(EventRow(deployment=deployment, kind=kind, message=message, replica=replica))

    def events(self, deployment: str, limit: int = 50) -> list[EventRow]:
        with self.session() as s:
            q = (
                select(EventRow)
                .where(EventRow.deployment == deployment)
                .order_by(EventRow.id.desc())
                .limit(limit)
            )
            return list(reversed(list(s.scalars(q))))

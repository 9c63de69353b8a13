"""Backups of the store: a consistent copy taken while the platform runs, and its restore.

SQLite: the online backup API (``sqlite3.Connection.backup``) copies the database page by page
under SQLite's own locking, so a backup taken while the platform writes is a consistent snapshot,
never a torn file copy. PostgreSQL: ``pg_dump --format=custom`` (consistent by its own snapshot)
and ``pg_restore --clean``. What the store holds comes back: deployments, users, token hashes,
quotas, jobs and batches. Bucket contents are not in the store (copy the buckets folder, or rely
on the S3 side's own backups).
"""

from __future__ import annotations

import glob
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import make_url

from modelplane.errors import InvalidInput

Progress = Callable[[int, int], None]
"""``(pages done, pages in all)``"""

_PAGES_PER_STEP = 256


def _sqlite_path(db_url: str) -> Path | None:
    url = make_url(db_url)
    if url.get_backend_name() != "sqlite":
        return None
    if not url.database or url.database == ":memory:":
        raise InvalidInput("an in-memory SQLite store has nothing to back up")
    return Path(url.database)


def _libpq_url(db_url: str) -> str:
    url = make_url(db_url)
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _copy_sqlite(src: Path, dest: Path, progress: Progress | None) -> None:
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    target = sqlite3.connect(dest)
    try:
        source.backup(
            target,
            pages=_PAGES_PER_STEP,
            progress=(lambda _s, left, total: progress(total - left, total)) if progress else None,
        )
    finally:
        target.close()
        source.close()


def backup(db_url: str, dest: Path, progress: Progress | None = None) -> None:
    """Write a consistent copy of the store at ``db_url`` to ``dest`` (which must not exist)."""
    if dest.exists():
        raise InvalidInput(f"{dest} exists; choose a new file name (a backup never overwrites)")
    sqlite = _sqlite_path(db_url)
    if sqlite is not None:
        if not sqlite.is_file():
            raise InvalidInput(f"no store at {sqlite}", hint="check --data-dir or --store-url")
        tmp = dest.with_name(dest.name + ".partial")
        tmp.unlink(missing_ok=True)
        _copy_sqlite(sqlite, tmp, progress)
        tmp.replace(dest)
        return
    _run([_tool("pg_dump"), "--format=custom", "--file", str(dest), _libpq_url(db_url)])


def restore(
    src: Path, db_url: str, *, force: bool = False, progress: Progress | None = None
) -> None:
    """Put the backup ``src`` in place as the store at ``db_url``; the platform must be stopped.

    An existing store is replaced only with ``force``.
    """
    if not src.is_file():
        raise InvalidInput(f"no backup at {src}")
    sqlite = _sqlite_path(db_url)
    if sqlite is not None:
        _check_sqlite_backup(src)
        if sqlite.exists() and sqlite.stat().st_size > 0 and not force:
            raise InvalidInput(
                f"a store already exists at {sqlite}",
                hint="restore into a new --data-dir, or pass --force to replace it",
            )
        sqlite.parent.mkdir(parents=True, exist_ok=True)
        tmp = sqlite.with_name(sqlite.name + ".restoring")
        tmp.unlink(missing_ok=True)
        _copy_sqlite(src, tmp, progress)
        for suffix in ("-wal", "-shm"):
            Path(f"{sqlite}{suffix}").unlink(missing_ok=True)
        tmp.replace(sqlite)
        return
    _check_pg_backup(src)
    if not force and _pg_has_store(db_url):
        raise InvalidInput(
            "a store already exists in that database",
            hint="restore into a new, empty database, or pass --force to replace it",
        )
    args = [_tool("pg_restore"), "--no-owner", "--dbname", _libpq_url(db_url), str(src)]
    if force:
        args[1:1] = ["--clean", "--if-exists"]
    # One transaction: a restore that fails half-way leaves the database as it was.
    args[1:1] = ["--single-transaction", "--exit-on-error"]
    _run(args)


def _check_pg_backup(src: Path) -> None:
    listed = subprocess.run(
        [_tool("pg_restore"), "--list", str(src)], capture_output=True, text=True
    )
    if listed.returncode != 0 or " TABLE public deployments " not in listed.stdout:
        why = listed.stderr.strip().removeprefix("pg_restore: error: ")
        raise InvalidInput(
            f"{src} is not a pg_dump backup of a modelplane store"
            + (f" ({why[-500:]})" if why else "")
        )


def _pg_has_store(db_url: str) -> bool:
    from sqlalchemy import create_engine, inspect

    from modelplane.store.db import normalize_url

    engine = create_engine(normalize_url(db_url))
    try:
        with engine.connect() as conn:
            return inspect(conn).has_table("deployments")
    finally:
        engine.dispose()


def _check_sqlite_backup(src: Path) -> None:
    try:
        conn = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
        try:
            (ok,) = conn.execute("PRAGMA quick_check").fetchone()
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise InvalidInput(f"{src} is not a SQLite backup of a modelplane store: {exc}") from None
    if ok != "ok" or "deployments" not in names:
        raise InvalidInput(f"{src} is not a SQLite backup of a modelplane store ({ok})")


def _tool(name: str) -> str:
    # Debian keeps the versioned binaries out of PATH when only the server package is installed.
    versioned = glob.glob(f"/usr/lib/postgresql/*/bin/{name}")
    newest = max(
        versioned,
        key=lambda p: int(Path(p).parts[4]) if Path(p).parts[4].isdigit() else 0,
        default=None,
    )
    found = shutil.which(name) or newest
    if found is None:
        raise InvalidInput(
            f"{name} is not installed; it backs up a PostgreSQL store",
            hint="apt-get install postgresql-client",
        )
    return found


def _run(args: list[str]) -> None:
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        raise InvalidInput(f"{Path(args[0]).name} failed: {done.stderr.strip()[-2000:]}")

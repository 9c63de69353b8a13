"""A real PostgreSQL server for the tests: Debian's ``postgresql``, ``initdb`` into a temp folder.

One server per test session, listening on a Unix socket only (no TCP port to collide with the
other engineers' and CI's servers); each test gets a database of its own. PostgreSQL refuses to
run as root, so under root the server runs as ``nobody`` in a folder handed to that user.
``scripts/test.sh`` installs the package; without it, the PostgreSQL half of the suite is
skipped with the reason (never silently passed).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


PG_BIN = _pg_bin()
PG_MISSING = PG_BIN is None
PG_MISSING_REASON = "PostgreSQL is not installed (scripts/test.sh installs Debian's postgresql)"


class PostgresServer:
    """A running server; :meth:`new_database` gives each test a fresh, empty database."""

    def __init__(self, root: Path, bin_dir: Path) -> None:
        self.root = root
        self.bin = bin_dir
        self.data = root / "data"
        self.sock = root / "sock"
        self._user: int | None = None
        self._group: int | None = None
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            self._user, self._group = nobody.pw_uid, nobody.pw_gid

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            args,
            user=self._user,
            group=self._group,
            extra_groups=[] if self._user is not None else None,
            cwd=self.root,
            capture_output=True,
            check=check,
            timeout=60,
        )

    def start(self) -> None:
        self.sock.mkdir()
        if self._user is not None:
            for path in (self.root, self.sock):
                os.chown(path, self._user, self._group or -1)
        os.chmod(self.root, 0o700)
        env_args = ("-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), *env_args)
        options = (
            f"-c listen_addresses='' -c unix_socket_directories='{self.sock}' -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
            "-o", options, "-w", "-t", "60", "start",
        )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.sock}"

    def new_database(self) -> str:
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        dsn = f"host={self.sock} user=postgres dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop",
            check=False,
        )


def _wait_gone(path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    if PG_BIN is None:
        pytest.skip(PG_MISSING_REASON)
    # Not under pytest's tmp_path: that is private to root, and the server runs as nobody.
    root = Path(tempfile.mkdtemp(prefix="modelplane-pg-"))
    server = PostgresServer(root, PG_BIN)
    try:
        server.start()
    except subprocess.CalledProcessError as exc:
        log = root / "log"
        detail = log.read_text() if log.exists() else exc.stderr.decode(errors="replace")
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {detail}") from exc
    try:
        yield server
    finally:
        server.stop()
        _wait_gone(server.data / "postmaster.pid")
        with contextlib.suppress(OSError):
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database on the session's server."""
    return postgres_server.new_database()

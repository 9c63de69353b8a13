"""What a model folder asks of its environment, and the key that names that environment.

A folder gets an environment of its own when it has a ``requirements.txt`` or is a
pip-installable package (a ``setup.py``, or a ``pyproject.toml`` with a ``[project]`` or
``[build-system]`` table: DEEPaaS modules are such packages). Anything else keeps the fast path:
the platform's own interpreter. The key is a hash of the files pip reads to resolve the
environment and of the Python version, so every deployment with the same requirements shares one
environment, and a change of requirements gets a new one.
"""

from __future__ import annotations

import hashlib
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

REQUIREMENTS = "requirements.txt"
PACKAGE_FILES = ("pyproject.toml", "setup.py", "setup.cfg")
KEY_VERSION = "1"
"""Bumped when the layout of an environment changes, so old ones are not reused."""


@dataclass(frozen=True)
class EnvSource:
    """The files that decide a folder's environment, with their contents."""

    folder: Path
    files: tuple[tuple[str, bytes], ...]
    package: bool
    """The folder itself is installed (``pip install FOLDER``); else only its requirements."""

    @property
    def requirements(self) -> bool:
        return any(name == REQUIREMENTS for name, _ in self.files)

    def describe(self) -> str:
        names = [name for name, _ in self.files]
        return ", ".join(names) + (
            " (the folder is installed as a package)" if self.package else ""
        )


def _is_package_pyproject(data: bytes) -> bool:
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return True  # let pip say what is wrong with it
    return "project" in doc or "build-system" in doc


def find_source(folder: str | Path) -> EnvSource | None:
    """The folder's requirements, or None when it runs on the platform's interpreter."""
    path = Path(folder)
    files: list[tuple[str, bytes]] = []
    package = False
    for name in (REQUIREMENTS, *PACKAGE_FILES):
        f = path / name
        if not f.is_file():
            continue
        data = f.read_bytes()
        if name == "pyproject.toml" and not _is_package_pyproject(data):
            continue  # only tool settings (ruff, black...): nothing to install
        files.append((name, data))
        if name != REQUIREMENTS:
            package = True
    if not files:
        return None
    return EnvSource(path, tuple(files), package)


def python_tag(version: tuple[int, ...] | None = None, implementation: str | None = None) -> str:
    v = version or tuple(sys.version_info[:3])
    return f"{implementation or sys.implementation.name}-{'.'.join(str(p) for p in v)}"


def env_key(source: EnvSource, python: str) -> str:
    """``python`` is :func:`python_tag`; the key is 16 hex digits."""
    h = hashlib.sha256()
    for part in (KEY_VERSION, python, "package" if source.package else "requirements"):
        h.update(part.encode() + b"\0")
    for name, data in sorted(source.files):
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()[:16]

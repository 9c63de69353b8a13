"""Building one model environment, and the path that lets replica code run inside it.

The tool is ``uv`` when it is installed (a dependency of modelplane), else ``pip``: measured here,
a virtualenv with one small requirement took uv 2.4 s cold and 1.5 s with its wheel cache against
pip's 22 s and 25 s (README, "Per-model environments"). Both keep a wheel cache under the
environments' root, so a rebuild downloads nothing.

A replica in such an environment still runs modelplane's worker code. That code, and only the few
libraries it imports (orjson, jsonschema and its helpers, PyYAML, python-multipart, uvloop,
httptools, numpy for the Open Inference Protocol front), are linked into a *worker path* that a
``.pth`` file appends to the environment's ``sys.path`` after its own site-packages: the model's
versions of any of them win, and the rest of the platform's dependencies (FastAPI, SQLAlchemy,
boto3, …) are not there at all.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelplane.envs.source import EnvSource
from modelplane.errors import EnvironmentFailed

EnvBuildFailed = EnvironmentFailed
MARKER = "modelplane-env.json"
PTH = "_modelplane_worker.pth"
WORKER_MODULES = (
    "modelplane",
    "orjson",
    "jsonschema",
    "jsonschema_specifications",
    "referencing",
    "rpds",
    "attr",
    "attrs",
    "yaml",
    "_yaml",
    "python_multipart",
    "multipart",
    "uvloop",
    "httptools",
    "swagger_ui_bundle",
    "typing_extensions",
    "idna",
    "jsonpointer",
    "rfc3339_validator",
    "six",
    "numpy",
)
_SKIP_COPY = shutil.ignore_patterns(
    ".git", "__pycache__", "*.egg-info", "build", "dist", ".venv", "node_modules"
)
Line = Callable[[str], None]


def find_uv() -> str | None:
    try:
        import uv
    except ImportError:
        return shutil.which("uv")
    try:
        return str(uv.find_uv_bin())
    except FileNotFoundError:
        return shutil.which("uv")


def base_python() -> str:
    """The interpreter environments are made from: the platform's, outside any venv."""
    return str(getattr(sys, "_base_executable", None) or sys.executable)


def worker_path(root: Path) -> Path:
    """A folder of links to modelplane and its worker's imports, made once per installation."""
    h = hashlib.sha256(f"{sys.prefix}\0{sys.version}".encode()).hexdigest()[:12]
    folder = root / ".worker" / h
    folder.mkdir(parents=True, exist_ok=True)
    for name in WORKER_MODULES:
        spec = importlib.util.find_spec(name)
        if spec is None:
            continue
        if spec.submodule_search_locations:
            targets = [Path(next(iter(spec.submodule_search_locations)))]
            libs = targets[0].parent / f"{name}.libs"  # wheels' bundled shared libraries
            if libs.is_dir():
                targets.append(libs)
        elif spec.origin and spec.origin not in ("built-in", "frozen"):
            targets = [Path(spec.origin)]
        else:
            continue
        for target in targets:
            link = folder / target.name
            if not link.exists():
                with contextlib.suppress(FileExistsError):
                    link.symlink_to(target)
    return folder


def site_packages(env: Path) -> Path:
    rel = Path(sysconfig.get_path("purelib", vars={"base": "", "platbase": ""}).lstrip("/"))
    return env / rel


class EnvBuilder:
    """Builds environments under ``root``; ``uv`` is the path of uv, None for pip."""

    def __init__(
        self,
        root: Path,
        *,
        uv: str | None = None,
        python: str | None = None,
        cache: Path | None = None,
        tail: int = 20,
    ) -> None:
        self.root = root
        self.cache = cache or root / ".cache"
        self.uv = uv
        self.python = python or base_python()
        self.tail = tail
        self.tool = "uv" if uv else "pip"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        env["UV_CACHE_DIR"] = str(self.cache / "uv")
        env["PIP_CACHE_DIR"] = str(self.cache / "pip")
        env.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        return env

    async def _run(self, args: list[str], on_line: Line, last: collections.deque[str]) -> None:
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=self._env(),
        )
        assert proc.stdout is not None
        try:
            while raw := await proc.stdout.readline():
                line = raw.decode("utf-8", "replace").rstrip()
                if line:
                    last.append(line)
                    on_line(line)
            code = await proc.wait()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        if code != 0:
            tool = Path(args[0]).name if self.uv else "pip"
            raise EnvironmentFailed(
                f"{tool} failed (exit {code}): " + " | ".join(last),
                hint="fix the model's requirements, then deploy again with --update",
            )

    async def build(self, source: EnvSource, key: str, on_line: Line) -> Path:
        """Build the environment ``key`` for ``source``; returns its folder."""
        final = self.root / key
        if (final / MARKER).is_file():
            return final
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{key}.{os.getpid()}.{time.monotonic_ns()}"
        work = tmp.with_name(tmp.name + ".src")
        last: collections.deque[str] = collections.deque(maxlen=self.tail)
        started = time.monotonic()
        try:
            py = str(tmp / "bin" / "python")
            if self.uv:
                await self._run(
                    [self.uv, "venv", "--quiet", "--python", self.python, str(tmp)], on_line, last
                )
                install = [self.uv, "pip", "install", "--python", py]
            else:
                await self._run([self.python, "-m", "venv", str(tmp)], on_line, last)
                install = [py, "-m", "pip", "install", "--progress-bar", "off"]
            targets: list[str] = []
            if source.requirements:
                targets += ["-r", str(source.folder / "requirements.txt")]
            if source.package:
                # A copy, so the build leaves nothing (build/, *.egg-info) in the user's folder.
                await asyncio.to_thread(shutil.copytree, source.folder, work, ignore=_SKIP_COPY)
                targets.append(str(work))
            await self._run([*install, *targets], on_line, last)
            (site_packages(tmp) / PTH).write_text(str(worker_path(self.root)) + "\n")
            info: dict[str, Any] = {
                "key": key,
                "tool": self.tool,
                "python": self.python,
                "folder": str(source.folder),
                "sources": [name for name, _ in source.files],
                "built_at": time.time(),
                "seconds": round(time.monotonic() - started, 3),
            }
            (tmp / MARKER).write_text(json.dumps(info, indent=2))
            try:
                tmp.rename(final)
            except OSError:
                if not (final / MARKER).is_file():
                    raise
                shutil.rmtree(tmp, ignore_errors=True)  # another build of the same key won
            return final
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, tmp, True)
            raise
        finally:
            if work.exists():
                await asyncio.to_thread(shutil.rmtree, work, True)

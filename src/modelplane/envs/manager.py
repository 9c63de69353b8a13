"""The environments on disk: one build per key, shared, with states for ``status``.

``ensure(folder)`` starts (once) the build a folder needs and returns its task; ``state(folder)``
answers without waiting: None for a folder on the fast path, else ``building`` (with the tool's
last lines), ``ready`` or ``failed`` (with its message). A failed build is not retried by itself:
the same requirements would fail the same way; a new deployment, an update or a restart tries
again.
"""

from __future__ import annotations

import asyncio
import collections
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelplane.envs.build import MARKER, EnvBuilder
from modelplane.envs.source import EnvSource, env_key, find_source, python_tag
from modelplane.errors import EnvironmentFailed


@dataclass
class EnvState:
    key: str
    state: str = "building"  # building | ready | failed
    lines: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=5))
    error: str | None = None
    path: Path | None = None
    started: float = field(default_factory=time.monotonic)
    seconds: float | None = None

    @property
    def python(self) -> str:
        assert self.path is not None
        return str(self.path / "bin" / "python")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "state": self.state, "last_lines": list(self.lines)}
        if self.error:
            out["error"] = self.error
        if self.path is not None:
            out["path"] = str(self.path)
        if self.seconds is not None:
            out["build_seconds"] = self.seconds
        return out


class EnvManager:
    def __init__(self, builder: EnvBuilder, python: str | None = None) -> None:
        self.builder = builder
        self.root = builder.root
        self.python = python or python_tag()
        self._states: dict[str, EnvState] = {}
        self._tasks: dict[str, asyncio.Task[EnvState]] = {}
        self._sources: dict[str, tuple[tuple[float, ...], EnvSource | None]] = {}

    # -- which environment ---------------------------------------------------------------------
    def source(self, folder: str | Path) -> EnvSource | None:
        """The folder's requirements, re-read only when one of its files changed."""
        path = Path(folder)
        stamp = tuple(
            (path / n).stat().st_mtime if (path / n).exists() else 0.0
            for n in ("requirements.txt", "pyproject.toml", "setup.py", "setup.cfg")
        )
        cached = self._sources.get(str(path))
        if cached is not None and cached[0] == stamp:
            return cached[1]
        found = find_source(path)
        self._sources[str(path)] = (stamp, found)
        return found

    def key(self, folder: str | Path) -> str | None:
        source = self.source(folder)
        return env_key(source, self.python) if source is not None else None

    # -- building ------------------------------------------------------------------------------
    def state(self, folder: str | Path) -> EnvState | None:
        key = self.key(folder)
        if key is None:
            return None
        found = self._states.get(key)
        if found is None and (self.root / key / MARKER).is_file():
            found = self._states[key] = EnvState(key, "ready", path=self.root / key)
        return found or EnvState(key, "building")

    def ensure(self, folder: str | Path) -> asyncio.Task[EnvState] | None:
        """Start the folder's build unless it has one (running, done or failed); None: fast path.

        A failed build stays failed until :meth:`retry`: the same requirements fail the same way.
        """
        source = self.source(folder)
        if source is None:
            return None
        key = env_key(source, self.python)
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._build(source, key))
            self._tasks[key] = task
        return task

    def retry(self, folder: str | Path) -> None:
        """Forget a failed build of the folder's key, so the next ensure() builds again."""
        key = self.key(folder)
        if key is not None and (s := self._states.get(key)) is not None and s.state == "failed":
            self._states.pop(key, None)
            self._tasks.pop(key, None)

    async def _build(self, source: EnvSource, key: str) -> EnvState:
        state = self._states.get(key)
        if state is None or state.state != "ready":
            state = self._states[key] = EnvState(key)
        if state.state == "ready":
            return state
        try:
            path = await self.builder.build(source, key, state.lines.append)
        except EnvironmentFailed as exc:
            state.state, state.error = "failed", exc.message
        except Exception as exc:  # the tool missing, a full disk: the same clear state
            state.state, state.error = "failed", f"{type(exc).__name__}: {exc}"
        else:
            state.state, state.path = "ready", path
            state.seconds = round(time.monotonic() - state.started, 3)
        return state

    async def python_for(self, folder: str | Path) -> str | None:
        """The interpreter for the folder's replicas (building first); None: the platform's."""
        task = self.ensure(folder)
        if task is None:
            return None
        state = await asyncio.shield(task)
        if state.state != "ready":
            raise EnvironmentFailed(
                f"the model's environment could not be built: {state.error}",
                hint="fix the model's requirements, then deploy again with --update",
            )
        return state.python

    # -- on disk -------------------------------------------------------------------------------
    def on_disk(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if not self.root.is_dir():
            return out
        for marker in sorted(self.root.glob(f"*/{MARKER}")):
            try:
                info = json.loads(marker.read_text())
            except (OSError, ValueError):
                continue
            info["path"] = str(marker.parent)
            info["bytes"] = _size(marker.parent)
            out.append(info)
        return out

    def prune(self, in_use: set[str]) -> list[str]:
        """Remove the environments whose key is not in ``in_use``; returns the removed keys."""
        removed = []
        for info in self.on_disk():
            key = str(info["key"])
            if key in in_use or key in self._building():
                continue
            shutil.rmtree(self.root / key, ignore_errors=True)
            self._states.pop(key, None)
            self._tasks.pop(key, None)
            removed.append(key)
        return removed

    def _building(self) -> set[str]:
        return {k for k, s in self._states.items() if s.state == "building"}


def _size(folder: Path) -> int:
    total = 0
    for p in folder.rglob("*"):
        try:
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
        except OSError:
            continue
    return total

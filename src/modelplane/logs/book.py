"""One append-only log file per deployment, under the data directory.

Lines are prefixed with a UTC timestamp and the replica id. Files rotate once at a size limit, so a
chatty model cannot fill the disk.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import IO


class LogBook:
    def __init__(self, root: Path, max_bytes: int = 10 * 1024 * 1024) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._files: dict[str, IO[str]] = {}

    def path(self, deployment: str) -> Path:
        return self.root / f"{deployment}.log"

    def write(self, deployment: str, source: str, line: str) -> None:
        f = self._files.get(deployment)
        if f is None:
            f = self._files[deployment] = open(self.path(deployment), "a", encoding="utf-8")  # noqa: SIM115
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        f.write(f"{stamp} [{source}] {line}\n")
        f.flush()
        if f.tell() > self.max_bytes:
            f.close()
            del self._files[deployment]
            os.replace(self.path(deployment), self.path(deployment).with_suffix(".log.1"))

    def tail(self, deployment: str, lines: int = 200) -> list[str]:
        out: deque[str] = deque(maxlen=lines)
        for path in (self.path(deployment).with_suffix(".log.1"), self.path(deployment)):
            with contextlib.suppress(FileNotFoundError), open(path, encoding="utf-8") as f:
                for line in f:
                    out.append(line.rstrip("\n"))
        return list(out)

    def remove(self, deployment: str) -> None:
        f = self._files.pop(deployment, None)
        if f is not None:
            f.close()
        for path in (self.path(deployment), self.path(deployment).with_suffix(".log.1")):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()

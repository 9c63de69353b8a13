"""Where OSCAR services keep what a deployment spec has no field for.

One folder per service under ``<data dir>/oscar/<name>/``: ``service.json`` (the definition as
sent, without the script), ``script.sh`` (the script, which is also the deployment's model
folder for a script service) and ``token`` (the service's token, 0600: OSCAR clients read it back
in plain text from ``GET /system/services/{name}``, and the store keeps only its hash).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelplane.model.oscar import SCRIPT

DEFINITION = "service.json"
TOKEN = "token"


@dataclass(frozen=True)
class Record:
    name: str
    definition: dict[str, Any]
    script: str | None
    token: str


class ServiceRecords:
    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, name: str) -> Path:
        return self.root / name

    def exists(self, name: str) -> bool:
        return (self.folder(name) / DEFINITION).is_file()

    def write(self, name: str, definition: dict[str, Any], script: str | None) -> Path:
        """Write the definition and the script (before the deployment exists: the loader checks
        the script is there). Returns the service's folder."""
        folder = self.folder(name)
        folder.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(self.root, 0o700)
        body = {k: v for k, v in definition.items() if k not in ("script", "token")}
        _atomic(folder / DEFINITION, json.dumps(body, indent=2).encode())
        path = folder / SCRIPT
        if script is None:
            path.unlink(missing_ok=True)
        else:
            _atomic(path, script.encode())
        return folder

    def set_token(self, name: str, token: str) -> None:
        _atomic(self.folder(name) / TOKEN, token.encode(), mode=0o600)

    def read(self, name: str) -> Record | None:
        folder = self.folder(name)
        try:
            definition = json.loads((folder / DEFINITION).read_text())
        except (OSError, ValueError):
            return None
        script = None
        with contextlib.suppress(OSError):
            script = (folder / SCRIPT).read_text()
        token = ""
        with contextlib.suppress(OSError):
            token = (folder / TOKEN).read_text().strip()
        return Record(name, definition, script, token)

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.parent.name for p in self.root.glob(f"*/{DEFINITION}"))

    def remove(self, name: str) -> None:
        shutil.rmtree(self.folder(name), ignore_errors=True)


def _atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)

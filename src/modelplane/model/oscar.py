"""The OSCAR script-service loader: a shell script run once per input file.

Like OSCAR's supervisor, each invocation gets a fresh temporary folder; the input is written to a
file there and the script runs under ``/bin/sh`` with, in its environment (besides the replica's,
which holds the deployment's ``env``):

- ``INPUT_FILE_PATH``: the input file, under the object's own name for a job with storage paths
  (``.../input/cat.png``), else ``event-file-<uuid>`` as the supervisor names a request body;
- ``TMP_INPUT_DIR``: the folder holding it;
- ``TMP_OUTPUT_DIR``: an empty folder for the results.

A job with storage paths (its input a :class:`NamedInput`) answers every file the script left in
``TMP_OUTPUT_DIR``, by its path relative to it, as a :class:`FileSet`. A request answers one file
as it is (its type guessed from its name), several as one zip archive (as the supervisor does for
synchronous calls), none: the script's own output (stdout and stderr) as plain text of type
:data:`LOG_CONTENT_TYPE`. The script's output also goes to the replica's log. A script that exits
with a non-zero status fails the prediction (500), naming the status and the last lines printed.

Model folder: ``script.sh`` (or the file named by ``model.entrypoint``), and optionally
``links.json``: ``{"links": [{"at": "mnt/bucket/folder", "to": "/abs/folder"}]}``, folders linked
into every invocation's working folder (an OSCAR ``mount`` or ``volume``, prepared by the platform).
"""

from __future__ import annotations

import asyncio
import io
import mimetypes
import os
import re
import shutil
import sys
import tempfile
import uuid
import zipfile
from pathlib import Path
from typing import Any

import orjson

from modelplane.errors import InvalidSpec
from modelplane.model.contract import (
    FileInput,
    FileOutput,
    FileSet,
    LoadedModel,
    ModelMetadata,
    NamedInput,
)

SCRIPT = "script.sh"
LINKS = "links.json"
LOG_CONTENT_TYPE = "text/plain; charset=utf-8; x-oscar-result=log"
"""The type of a result that is the script's own output (it wrote no file)."""
ZIP_CONTENT_TYPE = "application/zip"
INPUT_NAME = "event-file"
"""How the supervisor names a request body it saves: ``event-file-<uuid>``."""
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
_TAIL_LINES = 20


def script_path(folder: str | Path, entrypoint: str | None) -> Path:
    """The script a service runs: ``entrypoint`` (a file name in ``folder``) or script.sh."""
    name = entrypoint or SCRIPT
    if "/" in name or name in (".", ".."):
        raise InvalidSpec(
            f"model.entrypoint: {name!r} must be a file name in the model folder",
            field="model.entrypoint",
        )
    return Path(folder).expanduser().resolve() / name


class ScriptService:
    """A model whose ``predict`` runs the service's script on one input file."""

    def __init__(self, script: Path) -> None:
        self.script = script
        self.links: list[tuple[str, Path]] = []

    def load(self) -> None:
        if not self.script.is_file():
            raise FileNotFoundError(f"the service script {self.script} is gone")
        self.links = read_links(self.script.parent / LINKS)

    async def predict(self, inputs: Any) -> FileOutput | FileSet:
        if isinstance(inputs, NamedInput):
            name = inputs.name if _SAFE_NAME.match(inputs.name) else _event_name()
            log, out_dir, work = await self._run(name, inputs.data)
            try:
                return FileSet(tuple(_files(out_dir)), log)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        name, data = _input_file(inputs)
        log, out_dir, work = await self._run(name, data)
        try:
            return collect_outputs(out_dir, log)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    async def _run(self, name: str, data: bytes) -> tuple[bytes, Path, Path]:
        """Run the script on ``data`` saved as ``name``; the caller removes the work folder."""
        work = Path(tempfile.mkdtemp(prefix="oscar-"))
        try:
            in_dir, out_dir = work / "input", work / "output"
            in_dir.mkdir()
            out_dir.mkdir()
            for at, target in self.links:
                link = work / at
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(target, target_is_directory=True)
            input_path = in_dir / name
            input_path.write_bytes(data)
            env = {
                **os.environ,
                "INPUT_FILE_PATH": str(input_path),
                "TMP_INPUT_DIR": str(in_dir),
                "TMP_OUTPUT_DIR": str(out_dir),
            }
            proc = await asyncio.create_subprocess_exec(
                "/bin/sh",
                str(self.script),
                cwd=str(work),
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            log, _ = await proc.communicate()
            _echo(log)
            if proc.returncode != 0:
                tail = "\n".join(log.decode("utf-8", "replace").splitlines()[-_TAIL_LINES:])
                raise RuntimeError(f"the script exited with status {proc.returncode}: {tail}")
            return log, out_dir, work
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise


def read_links(path: Path) -> list[tuple[str, Path]]:
    """The folders to link into each working folder (see the module docstring)."""
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return []
    out = []
    for item in data.get("links", []):
        at = str(item["at"]).strip("/")
        if not at or any(p in ("", ".", "..") for p in at.split("/")):
            raise InvalidSpec(f"{path}: link {at!r} must be a relative path", field="links")
        target = Path(item["to"])
        target.mkdir(parents=True, exist_ok=True)
        out.append((at, target))
    return out


def _event_name() -> str:
    return f"{INPUT_NAME}-{uuid.uuid4()}"


def _files(out_dir: Path) -> list[FileOutput]:
    """Every file under ``out_dir`` (links followed), by its path relative to it, sorted."""
    out = []
    for path in sorted(p for p in out_dir.rglob("*") if p.is_file()):
        name = path.relative_to(out_dir).as_posix()
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        out.append(FileOutput(path.read_bytes(), ctype, name))
    return out


def _input_file(inputs: Any) -> tuple[str, bytes]:
    """The file a request carries: a raw body or multipart upload, else the JSON as text."""
    if isinstance(inputs, dict):
        files = [v for v in inputs.values() if isinstance(v, FileInput)]
        if files:
            f = files[0]
            name = f.filename if _SAFE_NAME.match(f.filename) and f.filename != "upload" else ""
            return name or _event_name(), f.data
    return _event_name(), orjson.dumps(inputs)


def _echo(log: bytes) -> None:
    """The script's output goes to the replica's log, as the supervisor's does to the pod's."""
    if log:
        sys.stdout.write(log.decode("utf-8", "replace"))
        if not log.endswith(b"\n"):
            sys.stdout.write("\n")
        sys.stdout.flush()


def collect_outputs(out_dir: Path, log: bytes) -> FileOutput:
    """One file as it is, several as a zip (paths relative to ``out_dir``), none: the log."""
    files = sorted(p for p in out_dir.rglob("*") if p.is_file())
    if not files:
        return FileOutput(log, LOG_CONTENT_TYPE)
    if len(files) == 1:
        path = files[0]
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileOutput(path.read_bytes(), ctype, path.name)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(out_dir).as_posix())
    return FileOutput(buf.getvalue(), ZIP_CONTENT_TYPE, "output.zip")


class OscarLoader:
    """``loader: oscar``: a folder with the service's script."""

    def detect(self, folder: str | Path, entrypoint: str | None) -> bool:
        try:
            return script_path(folder, entrypoint).is_file()
        except InvalidSpec:
            return False

    def check(self, folder: str | Path, entrypoint: str | None) -> None:
        path = script_path(folder, entrypoint)
        if not path.parent.is_dir():
            raise InvalidSpec(f"model.path: {path.parent} is not a folder", field="model.path")
        if not path.is_file():
            raise InvalidSpec(
                f"model.path: {path.parent} has no {path.name}",
                hint="an OSCAR script service needs its shell script in the model folder",
                field="model.path",
            )

    def prepare(self, folder: str | Path, entrypoint: str | None) -> None:
        """Nothing to import: the script runs in a process of its own."""

    def load(self, folder: str | Path, entrypoint: str | None) -> LoadedModel:
        self.check(folder, entrypoint)
        path = script_path(folder, entrypoint)
        metadata = ModelMetadata(
            name=path.parent.name,
            description=f"OSCAR script service running {path.name}",
            accepts=("*/*",),
            extra={"oscar": {"script": path.name}},
        )
        return LoadedModel(ScriptService(path), metadata)


LOADER = OscarLoader()

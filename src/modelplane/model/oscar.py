"""The OSCAR script-service loader: a shell script run once per input file.

Like OSCAR's supervisor, each invocation gets a fresh temporary folder; the input is written to a
file there and the script runs under ``/bin/sh`` with, in its environment (besides the replica's,
which holds the deployment's ``env``):

- ``INPUT_FILE_PATH``: the input file;
- ``TMP_INPUT_DIR``: the folder holding it;
- ``TMP_OUTPUT_DIR``: an empty folder for the results.

The result is what the script left in ``TMP_OUTPUT_DIR``: one file is returned as it is (its type
guessed from its name), several are returned as one zip archive (as the supervisor does for
synchronous calls), none means the script's own output (stdout and stderr) is the result, as
plain text of type :data:`LOG_CONTENT_TYPE`. The script's output also goes to the replica's log.
A script that exits with a non-zero status fails the prediction (500), naming the status and the
last lines it printed.

Model folder: ``script.sh`` (or the file named by ``model.entrypoint``).
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
import zipfile
from pathlib import Path
from typing import Any

import orjson

from modelplane.errors import InvalidSpec
from modelplane.model.contract import FileInput, FileOutput, LoadedModel, ModelMetadata

SCRIPT = "script.sh"
LOG_CONTENT_TYPE = "text/plain; charset=utf-8; x-oscar-result=log"
"""The type of a result that is the script's own output (it wrote no file)."""
ZIP_CONTENT_TYPE = "application/zip"
INPUT_NAME = "event-file"
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

    def load(self) -> None:
        if not self.script.is_file():
            raise FileNotFoundError(f"the service script {self.script} is gone")

    async def predict(self, inputs: Any) -> FileOutput:
        name, data = _input_file(inputs)
        work = Path(tempfile.mkdtemp(prefix="oscar-"))
        try:
            in_dir, out_dir = work / "input", work / "output"
            in_dir.mkdir()
            out_dir.mkdir()
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
            return collect_outputs(out_dir, log)
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _input_file(inputs: Any) -> tuple[str, bytes]:
    """The file a request carries: a raw body or multipart upload, else the JSON as text."""
    if isinstance(inputs, dict):
        files = [v for v in inputs.values() if isinstance(v, FileInput)]
        if files:
            f = files[0]
            name = f.filename if _SAFE_NAME.match(f.filename) and f.filename != "upload" else ""
            return name or INPUT_NAME, f.data
    return INPUT_NAME, orjson.dumps(inputs)


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

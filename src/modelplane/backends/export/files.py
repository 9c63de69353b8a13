"""The I/O at both ends of an export: read the model folder's facts, write the folder or a zip.

Rendering (pure) happens in between; these functions decide nothing about any target.
"""

from __future__ import annotations

import io
import os
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

from modelplane.backends.export.bundle import Bundle, Loader, ModelFacts
from modelplane.errors import InvalidInput, InvalidSpec, PayloadTooLarge
from modelplane.model.loader import get_loader
from modelplane.spec import DeploymentSpec

SKIP = {"__pycache__", ".git", ".venv", ".mypy_cache", ".pytest_cache"}
"""Folders never copied into an export (build leftovers, not the model)."""


def inspect_model(spec: DeploymentSpec) -> ModelFacts:
    """What the renderers need from the model folder, read once (checks the folder exists)."""
    folder = Path(spec.model.path).expanduser()
    if not folder.is_dir():
        raise InvalidSpec(
            f"model.path: {folder} is not a folder on this machine",
            hint="export on the machine that holds the model folder, or fix model.path",
            field="model.path",
        )
    loader = get_loader(spec.model.loader, folder, spec.model.entrypoint)
    name: Loader = "python"
    module = type(loader).__module__
    if module.endswith(".deepaas"):
        name = "deepaas"
    elif module.endswith(".oscar"):
        name = "oscar"
    loader.check(folder, spec.model.entrypoint)
    script = None
    if name == "oscar":
        from modelplane.model.oscar import script_path

        script = script_path(folder, spec.model.entrypoint).read_text()
    return ModelFacts(
        loader=name,
        requirements=(folder / "requirements.txt").is_file(),
        installable=(folder / "pyproject.toml").is_file() or (folder / "setup.py").is_file(),
        script=script,
    )


def _model_files(source: Path) -> Iterator[tuple[Path, str]]:
    for root, dirs, names in os.walk(source):
        dirs[:] = sorted(d for d in dirs if d not in SKIP)
        for name in sorted(names):
            if name.endswith(".pyc"):
                continue
            path = Path(root) / name
            yield path, path.relative_to(source).as_posix()


def write_folder(bundle: Bundle, out: Path, *, overwrite: bool = False) -> list[Path]:
    """Write every file and copy the model folder under ``out``; returns the files written."""
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise InvalidInput(
            f"{out} exists and is not empty",
            hint="choose another --out, or add --force to overwrite it",
        )
    written: list[Path] = []
    for rel, text in sorted(bundle.files.items()):
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if rel.endswith(".sh"):
            path.chmod(0o755)
        written.append(path)
    for dest, source in sorted(bundle.copies.items()):
        target = out / dest
        if target.exists():
            shutil.rmtree(target)
        for path, rel in _model_files(Path(source)):
            copy = target / rel
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, copy)
            written.append(copy)
    return written


ZIP_LIMIT = 256 * 1024**2
"""The largest model folder the export route zips in memory; beyond it, export with the CLI."""


def zip_bundle(bundle: Bundle, top: str, limit: int = ZIP_LIMIT) -> bytes:
    """The same folder as one zip archive, every entry under ``top/``."""
    total = sum(
        path.stat().st_size for src in bundle.copies.values() for path, _ in _model_files(Path(src))
    )
    if total > limit:
        raise PayloadTooLarge(
            f"the model folder holds {total / 2**20:.0f} MiB, more than the {limit / 2**20:.0f} "
            "MiB an export zip may carry",
            hint="run `modelplane export SPEC.yaml --target T` on the machine with the model",
        )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for rel, text in sorted(bundle.files.items()):
            info = zipfile.ZipInfo(f"{top}/{rel}", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if rel.endswith(".sh") else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text)
        for dest, source in sorted(bundle.copies.items()):
            for path, rel in _model_files(Path(source)):
                archive.write(path, f"{top}/{dest}/{rel}")
    return buffer.getvalue()

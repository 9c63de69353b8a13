"""Model folders uploaded as zip archives: unpacked safely into a folder of their own.

A zip is untrusted input: member names may climb out of the target (``../``, absolute paths),
claim to be links or devices, or unpack to far more than they weigh (zip bombs). Each member is
checked before a byte is written, sizes are counted as they are actually inflated (not as the
archive declares them), and a refused archive leaves nothing behind.
"""

from __future__ import annotations

import io
import shutil
import stat
import uuid
import zipfile
from pathlib import Path, PurePosixPath

from modelplane.errors import InvalidInput, PayloadTooLarge

MAX_MEMBERS = 10_000
_CHUNK = 1 << 16


def unpack_model(
    data: bytes, root: Path, *, max_bytes: int, max_members: int = MAX_MEMBERS
) -> Path:
    """Unpack the zip ``data`` into a new folder under ``root`` and return the model folder:
    the archive's single top-level folder when it has one (zipping a folder makes that), else the
    new folder itself."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise InvalidInput(
            "the upload is not a zip archive",
            hint="zip the model folder (e.g. `zip -r model.zip my-model/`) and upload that",
        ) from None
    with archive:
        members = archive.infolist()
        if not members:
            raise InvalidInput("the zip archive is empty")
        if len(members) > max_members:
            raise InvalidInput(f"the zip archive has {len(members)} entries; at most {max_members}")
        names = [_safe_name(m) for m in members]
        target = root / uuid.uuid4().hex
        target.mkdir(parents=True)
        try:
            written = 0
            for member, name in zip(members, names, strict=True):
                dest = target.joinpath(*name.parts)
                if member.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as src, open(dest, "wb") as out:
                    while chunk := src.read(_CHUNK):
                        written += len(chunk)
                        if written > max_bytes:
                            raise PayloadTooLarge(
                                f"the zip archive unpacks to more than {max_bytes} bytes",
                                hint="leave data sets and caches out of the model folder",
                            )
                        out.write(chunk)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
    tops = {n.parts[0] for n in names}
    if len(tops) == 1 and (target / next(iter(tops))).is_dir():
        return target / next(iter(tops))
    return target


def _safe_name(member: zipfile.ZipInfo) -> PurePosixPath:
    raw = member.filename.replace("\\", "/")
    name = PurePosixPath(raw)
    if name.is_absolute() or ".." in name.parts or raw.startswith("/") or ":" in name.parts[0]:
        raise InvalidInput(f"the zip archive has an unsafe path: {member.filename!r}")
    kind = stat.S_IFMT(member.external_attr >> 16)  # 0 when the archiver recorded no type
    if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
        raise InvalidInput(
            f"the zip archive has a link or special file: {member.filename!r}",
            hint="only regular files and folders can be uploaded",
        )
    parts = [p for p in name.parts if p not in ("", ".")]
    if not parts:
        raise InvalidInput(f"the zip archive has an empty path: {member.filename!r}")
    return PurePosixPath(*parts)

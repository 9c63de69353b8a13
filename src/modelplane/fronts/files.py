"""The files front, replica side: a job with storage paths (OSCAR's layout).

The job runner sends the input object's bytes with ``meta = b"files\\x00<object name>"``. A model
that keeps files (its metadata says ``accepts_named``: OSCAR script services) receives a
:class:`~modelplane.model.NamedInput` and answers a :class:`~modelplane.model.FileSet`; any other
model receives ``{"file": FileInput}`` under that name and its one result becomes one file named
``<object name><ext>``. Either way the answer is a *bundle*: an uncompressed zip of every file,
by its relative name, which the runner unpacks into the output paths (:func:`unpack`).
"""

from __future__ import annotations

import io
import mimetypes
import zipfile
from typing import Any

from modelplane.errors import InvalidInput
from modelplane.model.contract import (
    FileInput,
    FileOutput,
    FileSet,
    LoadedModel,
    NamedInput,
    encode_output,
)

BUNDLE = "application/x-modelplane-files+zip"
"""The content type of a bundle: every file a job left."""
_EXT = {"application/json": ".json", "text/plain": ".txt", "application/octet-stream": ".out"}


def name_param(name: str) -> bytes:
    return name.encode("utf-8")


def accepts_named(model: LoadedModel) -> bool:
    return bool(model.metadata.extra.get("oscar"))


class FilesCodec:
    def decode(self, model: LoadedModel, content_type: str, params: bytes, body: bytes) -> Any:
        name = params.decode("utf-8", "replace")
        if not name:
            raise InvalidInput("a files request names its input object")
        if accepts_named(model):
            return NamedInput(name, content_type, body)
        return {"file": FileInput("file", name, content_type, body)}

    def encode(self, model: LoadedModel, result: Any, params: bytes) -> tuple[int, bytes, bytes]:
        if isinstance(result, FileSet):
            files = result.files
        else:
            data, ctype = encode_output(result)
            base = ctype.split(";", 1)[0].strip().lower()
            ext = _EXT.get(base) or mimetypes.guess_extension(base) or ".out"
            files = (FileOutput(data, ctype, params.decode("utf-8", "replace") + ext),)
        return 200, BUNDLE.encode(), pack(files)


def pack(files: tuple[FileOutput, ...] | list[FileOutput]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:
        for f in files:
            archive.writestr(f.filename or "output", f.data)
    return buf.getvalue()


def unpack(bundle: bytes) -> list[tuple[str, bytes]]:
    """``(relative name, content)`` of every file in a bundle, in order."""
    try:
        with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
            return [(i.filename, archive.read(i)) for i in archive.infolist() if not i.is_dir()]
    except zipfile.BadZipFile as exc:
        raise InvalidInput(f"the job's files could not be read: {exc}") from None


CODEC = FilesCodec()

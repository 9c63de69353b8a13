"""schemathesis hooks for tests/e2e/test_api_fuzz.py (loaded through ``SCHEMATHESIS_HOOKS``).

A model upload's body is a zip archive of a model folder: bytes no JSON Schema can describe, so
the document says ``format: binary`` and this strategy makes archives the way a user would (the
echo example's files under a folder of a generated name, or at the archive's root).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import schemathesis
from hypothesis import strategies as st

ECHO = Path(__file__).resolve().parents[2] / "examples" / "echo"
FILES = {p.name: p.read_bytes() for p in sorted(ECHO.iterdir()) if p.is_file()}


def model_zip(folder: str) -> bytes:
    """The echo model's files, under ``folder/`` (or at the root when ``folder`` is empty)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in FILES.items():
            archive.writestr(f"{folder}/{name}" if folder else name, data)
    return out.getvalue()


schemathesis.openapi.media_type(
    "application/zip",
    st.builds(model_zip, st.from_regex(r"\A[a-z][a-z0-9_-]{0,20}\Z") | st.just("")),
    aliases=["application/x-zip-compressed"],
)

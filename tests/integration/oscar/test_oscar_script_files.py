"""The OSCAR script loader on a job's file: the object's own name in, every file out, links."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelplane.model.contract import FileSet, NamedInput
from modelplane.model.oscar import LINKS, ScriptService

pytestmark = pytest.mark.integration  # runs /bin/sh


async def test_a_job_sees_its_object_by_name_and_answers_every_file(tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text(
        'basename "$INPUT_FILE_PATH"\n'
        'mkdir -p "$TMP_OUTPUT_DIR/sub"\n'
        'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/sub/copy-$(basename "$INPUT_FILE_PATH")"\n'
        'echo done > "$TMP_OUTPUT_DIR/done.txt"\n'
        'cat shared/greeting >> "$TMP_OUTPUT_DIR/done.txt"\n'
        "echo seen > shared/seen\n"
    )
    shared = tmp_path / "shared-folder"
    shared.mkdir()
    (shared / "greeting").write_text("hi\n")
    (tmp_path / LINKS).write_text(json.dumps({"links": [{"at": "shared", "to": str(shared)}]}))
    service = ScriptService(script)
    service.load()
    result = await service.predict(NamedInput("cat.png", "image/png", b"PNG"))
    assert isinstance(result, FileSet)
    assert result.log == b"cat.png\n"
    assert [(f.filename, f.data) for f in result.files] == [
        ("done.txt", b"done\nhi\n"),
        ("sub/copy-cat.png", b"PNG"),
    ]
    assert (shared / "seen").read_text() == "seen\n"  # the link is the folder itself

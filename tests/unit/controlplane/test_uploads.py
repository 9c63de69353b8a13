"""Model folders uploaded as zips: unpacked where they belong, refused when unsafe."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

from modelplane.controlplane.uploads import unpack_model
from modelplane.errors import InvalidInput, PayloadTooLarge


def zipped(files: dict[str, bytes], *, link: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
        if link is not None:
            info = zipfile.ZipInfo(link)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, "/etc/passwd")
    return buf.getvalue()


def test_a_zipped_folder_unpacks_to_that_folder(tmp_path: Path) -> None:
    data = zipped({"echo/modelplane.yaml": b"entrypoint: m:M\n", "echo/m.py": b"class M: ...\n"})
    folder = unpack_model(data, tmp_path, max_bytes=1 << 20)
    assert folder.name == "echo"
    assert (folder / "m.py").read_bytes() == b"class M: ...\n"
    assert folder.parent.parent == tmp_path


def test_loose_files_unpack_into_the_new_folder_itself(tmp_path: Path) -> None:
    folder = unpack_model(zipped({"modelplane.yaml": b"x", "m.py": b"y"}), tmp_path, max_bytes=99)
    assert sorted(p.name for p in folder.iterdir()) == ["m.py", "modelplane.yaml"]
    assert folder.parent == tmp_path


def test_two_uploads_never_share_a_folder(tmp_path: Path) -> None:
    data = zipped({"a/x": b"1"})
    assert unpack_model(data, tmp_path, max_bytes=9) != unpack_model(data, tmp_path, max_bytes=9)


@pytest.mark.parametrize("name", ["../evil.py", "a/../../evil.py", "/etc/evil", "C:/evil"])
def test_paths_that_climb_out_are_refused_and_nothing_is_written(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidInput, match="unsafe path"):
        unpack_model(zipped({"ok.txt": b"x", name: b"x"}), tmp_path / "root", max_bytes=99)
    assert not (tmp_path / "evil.py").exists()
    assert not (tmp_path / "root").exists() or not any((tmp_path / "root").iterdir())


def test_links_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="link or special file"):
        unpack_model(zipped({"a.txt": b"x"}, link="passwd"), tmp_path, max_bytes=99)


def test_a_zip_bomb_stops_at_the_limit_and_leaves_nothing(tmp_path: Path) -> None:
    data = zipped({"big/zeros": b"\0" * (4 << 20)})  # 4 MiB that compress to a few kB
    assert len(data) < 64 << 10
    with pytest.raises(PayloadTooLarge):
        unpack_model(data, tmp_path, max_bytes=1 << 20)
    assert list(tmp_path.iterdir()) == []


def test_not_a_zip_and_empty_zip_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not a zip"):
        unpack_model(b"hello", tmp_path, max_bytes=99)
    with pytest.raises(InvalidInput, match="empty"):
        unpack_model(zipped({}), tmp_path, max_bytes=99)

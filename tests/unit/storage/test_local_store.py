"""What only the local store must guarantee: it never leaves its root, and its files stay tidy.

The behaviour shared with S3 is in tests/integration/storage/test_bucket_conformance.py.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from modelplane.errors import AlreadyExists, InvalidInput, NotFound
from modelplane.storage import LocalBucketStore


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder next to the store's root, with a file an attacker would like to read."""
    path = tmp_path / "outside"
    path.mkdir()
    (path / "secret.txt").write_bytes(b"secret")
    return path


@pytest.fixture
def store(tmp_path: Path) -> LocalBucketStore:
    store = LocalBucketStore(tmp_path / "root")
    store.create_bucket("bkt")
    return store


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def test_constructor_touches_nothing(tmp_path: Path) -> None:
    LocalBucketStore(tmp_path / "not-yet")
    assert not (tmp_path / "not-yet").exists()
    assert LocalBucketStore(tmp_path / "not-yet").list_buckets() == []


def test_symlinked_folder_in_bucket_is_never_written_through(
    store: LocalBucketStore, tmp_path: Path, outside: Path
) -> None:
    (tmp_path / "root" / "bkt" / "link").symlink_to(outside, target_is_directory=True)
    before = snapshot(outside)

    with pytest.raises(InvalidInput, match="symbolic link"):
        store.put("bkt", "link/evil.txt", b"pwned")
    with pytest.raises(InvalidInput, match="symbolic link"):
        store.put("bkt", "link/secret.txt", b"pwned")
    with pytest.raises(InvalidInput, match="symbolic link"):
        store.get("bkt", "link/secret.txt")
    with pytest.raises(InvalidInput, match="symbolic link"):
        store.delete("bkt", "link/secret.txt")

    assert snapshot(outside) == before
    assert store.list("bkt") == []  # links are not objects


def test_symlinked_object_is_not_read_or_replaced_through(
    store: LocalBucketStore, tmp_path: Path, outside: Path
) -> None:
    (tmp_path / "root" / "bkt" / "file.txt").symlink_to(outside / "secret.txt")

    for call in [
        lambda: store.get("bkt", "file.txt"),
        lambda: store.head("bkt", "file.txt"),
        lambda: store.put("bkt", "file.txt", b"pwned"),
        lambda: store.get_to_path("bkt", "file.txt", tmp_path / "copy"),
    ]:
        with pytest.raises(InvalidInput):
            call()
    assert (outside / "secret.txt").read_bytes() == b"secret"
    assert not (tmp_path / "copy").exists()


def test_symlinked_bucket_and_metadata_folders_are_refused(tmp_path: Path, outside: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "evil").symlink_to(outside, target_is_directory=True)
    store = LocalBucketStore(root)

    with pytest.raises(InvalidInput, match="symbolic link"):
        store.put("evil", "x", b"pwned")
    with pytest.raises(InvalidInput, match="symbolic link"):
        store.delete_bucket("evil", force=True)
    assert "evil" not in store.list_buckets()

    store.create_bucket("good")
    (root / ".meta").symlink_to(outside, target_is_directory=True)
    # Metadata rides on the object's own file (an extended attribute): the linked folder is
    # never used, so nothing lands outside.
    store.put("good", "x", b"data", "text/plain")
    assert store.head("good", "x").content_type == "text/plain"
    assert snapshot(outside) == {"secret.txt": b"secret"}


def test_without_extended_attributes_metadata_goes_to_files_and_links_are_refused(
    tmp_path: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A filesystem without user attributes (some network and FUSE mounts) is simulated: setxattr
    # fails as it does there, ENOTSUP.
    def no_xattr(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.ENOTSUP, "Operation not supported")

    monkeypatch.setattr(os, "setxattr", no_xattr)
    root = tmp_path / "root"
    store = LocalBucketStore(root)
    store.create_bucket("good")
    store.put("good", "a/b.json", b"{}", "application/x-thing")
    assert store.head("good", "a/b.json").content_type == "application/x-thing"
    assert [p.suffix for p in (root / ".meta" / "good").rglob("*.json")] == [".json"]

    shutil.rmtree(root / ".meta")
    (root / ".meta").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidInput, match="symbolic link"):
        store.put("good", "x", b"data")
    assert snapshot(outside) == {"secret.txt": b"secret"}


def test_root_itself_may_be_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real, target_is_directory=True)
    store = LocalBucketStore(tmp_path / "alias")

    store.create_bucket("bkt")
    store.put("bkt", "a/b", b"ok")
    assert (real / "bkt" / "a" / "b").read_bytes() == b"ok"


def test_metadata_and_temp_files_are_not_objects(store: LocalBucketStore, tmp_path: Path) -> None:
    store.put("bkt", "x.json", b"{}", content_type="application/json")
    # A crash mid-write leaves a temporary file behind; it must not become a job input.
    (tmp_path / "root" / "bkt" / ".modelplane-tmp-abcd1234.part").write_bytes(b"half")

    assert [o.key for o in store.list("bkt")] == ["x.json"]
    assert store.list_buckets() == ["bkt"]
    # The metadata is an attribute of the object's own file: no second file anywhere.
    assert sorted(p.name for p in (tmp_path / "root").iterdir()) == ["bkt"]
    meta = json.loads(os.getxattr(tmp_path / "root" / "bkt" / "x.json", "user.modelplane.meta"))
    assert (meta["key"], meta["size"], meta["content_type"]) == ("x.json", 2, "application/json")


def test_files_dropped_in_by_hand_are_objects(store: LocalBucketStore, tmp_path: Path) -> None:
    folder = tmp_path / "root" / "bkt" / "inbox"
    folder.mkdir()
    (folder / "cat.png").write_bytes(b"\x89PNG")
    (folder / "bad\\name").write_bytes(b"?")  # no key can address it: skipped

    [info] = store.list("bkt")
    assert (info.key, info.size) == ("inbox/cat.png", 4)
    assert info.etag == hashlib.md5(b"\x89PNG", usedforsecurity=False).hexdigest()
    assert store.head("bkt", "inbox/cat.png").content_type == "image/png"


def test_metadata_goes_stale_when_a_file_is_edited_by_hand(
    store: LocalBucketStore, tmp_path: Path
) -> None:
    store.put("bkt", "k.txt", b"old", content_type="text/csv")
    path = tmp_path / "root" / "bkt" / "k.txt"
    path.write_bytes(b"new content")
    os.utime(path, ns=(1, 1))

    info = store.head("bkt", "k.txt")
    assert info.etag == hashlib.md5(b"new content", usedforsecurity=False).hexdigest()
    assert info.size == 11
    assert info.content_type == "text/plain"  # guessed again: the recorded type is for old bytes


def test_file_and_folder_of_the_same_name_conflict(store: LocalBucketStore) -> None:
    store.put("bkt", "a", b"file")
    with pytest.raises(AlreadyExists, match="conflicts"):
        store.put("bkt", "a/b", b"x")

    store.put("bkt", "d/e", b"x")
    with pytest.raises(AlreadyExists, match="conflicts"):
        store.put("bkt", "d", b"x")
    with pytest.raises(NotFound):
        store.get("bkt", "d")  # a folder is not an object
    assert [o.key for o in store.list("bkt")] == ["a", "d/e"]


def test_delete_prunes_empty_folders(store: LocalBucketStore, tmp_path: Path) -> None:
    store.put("bkt", "a/b/c/d.txt", b"x")
    store.put("bkt", "a/keep.txt", b"y")

    store.delete("bkt", "a/b/c/d.txt")

    assert not (tmp_path / "root" / "bkt" / "a" / "b").exists()
    assert (tmp_path / "root" / "bkt" / "a" / "keep.txt").exists()
    store.put("bkt", "a/b", b"now a file")  # the pruned folder no longer gets in the way
    assert store.get("bkt", "a/b") == b"now a file"


def test_overlong_segment_is_invalid_input(store: LocalBucketStore) -> None:
    with pytest.raises(InvalidInput, match="too long for the local filesystem"):
        store.put("bkt", "x" * 300, b"data")
    assert not store.exists("bkt", "x" * 300)
    with pytest.raises(NotFound):
        store.get("bkt", "x" * 300)
    store.delete("bkt", "x" * 300)


def test_sweep_removes_only_dead_temporary_files(tmp_path: Path) -> None:
    store = LocalBucketStore(tmp_path / "buckets")
    store.create_bucket("bkt")
    store.put("bkt", "deep/obj.json", b"{}")
    folder = store.bucket_folder("bkt") / "deep"
    dead = folder / ".modelplane-tmp-abcd1234.part"
    fresh = folder / ".modelplane-tmp-wxyz9876.part"
    lookalike = folder / ".modelplane-tmp-user.part"  # not our pattern: somebody's file
    for path in (dead, fresh, lookalike):
        path.write_bytes(b"half")
    now = dead.stat().st_mtime
    os.utime(dead, (now - 120, now - 120))
    os.utime(lookalike, (now - 120, now - 120))
    assert store.sweep_temporary(60.0, now) == 1
    assert not dead.exists() and fresh.exists() and lookalike.exists()
    assert store.sweep_temporary(0.0, now + 1) == 1  # alone on the store: every one is dead
    assert not fresh.exists()
    assert [o.key for o in store.list("bkt")] == ["deep/.modelplane-tmp-user.part", "deep/obj.json"]


def test_put_many_gives_each_object_its_own_outcome(
    store: LocalBucketStore, tmp_path: Path, outside: Path
) -> None:
    store.put("bkt", "taken", b"file")
    (tmp_path / "root" / "bkt" / "link").symlink_to(outside, target_is_directory=True)
    items: list[tuple[str, bytes, str | None]] = [
        ("in/a.json", b'{"a": 1}', "application/json"),
        ("../escape", b"x", None),  # a key that may not be
        ("taken/b", b"x", None),  # a folder where an object is
        ("link/c", b"x", None),  # through a link
        ("in/d.bin", b"\x00\x01", None),
        ("in/deeper/e", b"e", "text/plain"),
    ]
    out = store.put_many("bkt", items)

    assert [type(o).__name__ for o in out] == [
        "ObjectInfo",
        "InvalidInput",
        "AlreadyExists",
        "InvalidInput",
        "ObjectInfo",
        "ObjectInfo",
    ]
    assert store.get("bkt", "in/a.json") == b'{"a": 1}'
    assert store.head("bkt", "in/a.json").content_type == "application/json"
    assert store.head("bkt", "in/d.bin").etag == hashlib.md5(b"\x00\x01").hexdigest()
    assert store.head("bkt", "in/deeper/e").content_type == "text/plain"
    assert sorted(o.key for o in store.list("bkt")) == [
        "in/a.json",
        "in/d.bin",
        "in/deeper/e",
        "taken",
    ]
    assert not list((tmp_path / "root" / "bkt").rglob(".modelplane-tmp-*"))  # nothing left over
    assert list(outside.iterdir()) == [outside / "secret.txt"]


def test_put_many_checks_a_folder_again_once_it_is_a_link(
    store: LocalBucketStore, tmp_path: Path, outside: Path
) -> None:
    """What one group found real is not trusted by the next one."""
    store.put_many("bkt", [("in/a", b"a", None)])
    shutil.rmtree(tmp_path / "root" / "bkt" / "in")
    (tmp_path / "root" / "bkt" / "in").symlink_to(outside, target_is_directory=True)

    [out] = store.put_many("bkt", [("in/b", b"b", None)])

    assert isinstance(out, InvalidInput) and "symbolic link" in out.message
    assert not (outside / "b").exists()


def test_put_many_of_a_missing_bucket_fails_every_object(store: LocalBucketStore) -> None:
    out = store.put_many("nope", [("a", b"a", None), ("b", b"b", None)])
    assert [type(o) for o in out] == [NotFound, NotFound]


def test_get_many_gives_each_key_its_own_outcome(
    store: LocalBucketStore, tmp_path: Path, outside: Path
) -> None:
    big = os.urandom(3 * 1024 * 1024 + 5)  # more than one read's worth
    store.put_many("bkt", [("in/a", b"a", None), ("in/big", big, None), ("b", b"", None)])
    (tmp_path / "root" / "bkt" / "in" / "link").symlink_to(outside / "secret.txt")
    (tmp_path / "root" / "bkt" / "folder").mkdir()

    out = store.get_many("bkt", ["in/a", "in/big", "b", "in/missing", "in/link", "folder", "../x"])

    assert out[:3] == [b"a", big, b""]
    assert [type(o) for o in out[3:]] == [NotFound, InvalidInput, NotFound, InvalidInput]
    assert [type(o) for o in store.get_many("nope", ["a"])] == [NotFound]


def test_objects_are_readable_by_others_whatever_the_umask(
    store: LocalBucketStore, tmp_path: Path
) -> None:
    """A sandboxed script reads its mounted bucket under a uid of its own."""
    old = os.umask(0o077)
    try:
        store.put("bkt", "a", b"a")
        store.put_many("bkt", [("b", b"b", None)])
    finally:
        os.umask(old)
    assert (tmp_path / "root" / "bkt" / "a").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "root" / "bkt" / "b").stat().st_mode & 0o777 == 0o644

"""What the platform reads back of a training's own record: written by the model's code, so
untrusted (real files in a temporary folder)."""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from modelplane.gateway.trainproc import alive, read_untrusted, signal_all, start_time


def test_only_the_documents_fields_are_kept(tmp_path: Path) -> None:
    record = {
        "status": "done",
        "result": {"output": 1},
        "args": {"epochs": 2},
        "pid": 1,
        "uuid": "forged",
        "hold": {"gpus": [0, 1]},
    }
    (tmp_path / "r.json").write_bytes(orjson.dumps(record))
    got = read_untrusted(tmp_path / "r.json")
    assert got == {"status": "done", "result": {"output": 1}, "args": {"epochs": 2}}


def test_a_made_up_status_or_field_type_is_dropped(tmp_path: Path) -> None:
    record = {"status": "cancelled", "args": "x", "message": 3, "messages": {"a": ["b"]}}
    (tmp_path / "r.json").write_bytes(orjson.dumps(record))
    assert read_untrusted(tmp_path / "r.json") == {"messages": {"a": ["b"]}}


def test_links_fifos_and_garbage_are_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.json"
    secret.write_bytes(orjson.dumps({"status": "done", "result": "the admin token"}))
    (tmp_path / "link.json").symlink_to(secret)
    assert read_untrusted(tmp_path / "link.json") == {}
    os.mkfifo(tmp_path / "fifo.json")
    assert read_untrusted(tmp_path / "fifo.json") == {}  # returns at once: nobody writes it
    (tmp_path / "cut.json").write_bytes(b'{"status": "done", "result": "' + b"x" * 32)
    assert read_untrusted(tmp_path / "cut.json") == {}
    (tmp_path / "list.json").write_bytes(b"[1, 2]")
    assert read_untrusted(tmp_path / "list.json") == {}
    assert read_untrusted(tmp_path / "missing.json") == {}


def test_a_record_over_the_size_limit_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_bytes(orjson.dumps({"status": "done", "result": "x" * 20}))
    assert read_untrusted(tmp_path / "r.json", limit=16) == {}
    assert read_untrusted(tmp_path / "r.json", limit=64)["status"] == "done"


def test_a_pid_is_alive_only_with_its_own_start_time() -> None:
    me = os.getpid()
    started = start_time(me)
    assert isinstance(started, int)
    assert alive(me, started)
    assert not alive(me, started + 1)  # a recycled pid is not the training
    assert not alive(me)  # without a start time, the command line must be a training's
    assert not alive(None)


def test_no_signal_goes_to_a_process_group_or_everyone() -> None:
    # a pid of 0 or -1 would signal our own group or every process we may signal
    for pid in (-1, 0, 1):
        signal_all(pid, kill=True, confined=True)
        signal_all(pid, kill=True, confined=False)
    assert alive(os.getpid(), start_time(os.getpid()))

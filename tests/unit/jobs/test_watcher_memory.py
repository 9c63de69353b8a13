"""The watcher's memory of objects that have their job is bounded."""

from __future__ import annotations

from modelplane.jobs import watcher


def test_seen_objects_start_over_past_the_limit(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(watcher, "SEEN_LIMIT", 3)
    w = watcher.BucketWatcher(jobs=None, storage=None, deployments=None)  # type: ignore[arg-type]
    for i in range(3):
        w.mark_seen("echo", f"k{i}", "e")
    assert w._seen["echo"] == {("k0", "e"), ("k1", "e"), ("k2", "e")}
    w.mark_seen("echo", "k3", "e")
    assert w._seen["echo"] == {("k3", "e")}

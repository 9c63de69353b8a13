"""The watcher's memory of objects that have their job is bounded, in entries and in bytes."""

from __future__ import annotations

import sys
import tracemalloc

from modelplane.jobs import watcher
from modelplane.jobs.watcher import SeenObjects


def test_seen_objects_keep_the_newer_half_past_the_limit(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(watcher, "SEEN_LIMIT", 4)
    w = watcher.BucketWatcher(jobs=None, storage=None, deployments=None)  # type: ignore[arg-type]
    for i in range(4):
        w.mark_seen("echo", "in", f"k{i}", "e")
    seen = w._seen["echo"]
    assert all(seen.has(f"k{i}", "e") for i in range(4))
    assert not seen.has("k0", "other etag") and not seen.has("k4", "e")
    w.mark_seen("echo", "in", "k4", "e")
    # The oldest generation (k0, k1) is gone; the newer half and the newest object stay.
    assert [seen.has(f"k{i}", "e") for i in range(5)] == [False, False, True, True, True]
    assert len(seen) == 3


class FollowedBuckets:
    """A change feed, as far as the watcher's memory asks: which buckets it follows now."""

    def __init__(self, *buckets: str) -> None:
        self.following = frozenset(buckets)


def test_uploads_into_followed_buckets_are_not_remembered() -> None:
    # Every upload's own event is dropped and no listing follows: remembering each one grew
    # the platform by an entry a job, for as long as it ran (the soak's growth).
    w = watcher.BucketWatcher(
        jobs=None,  # type: ignore[arg-type]
        storage=None,  # type: ignore[arg-type]
        deployments=None,
        changes=FollowedBuckets("in"),
    )
    for i in range(10_000):
        w.mark_seen("echo", "in", f"soak/{i}.json", "e")
    assert len(w._seen.get("echo", ())) == 0
    # A bucket the feed does not follow (yet) is listed again: its uploads are remembered.
    w.mark_seen("echo", "other", "soak/0.json", "e")
    assert w._seen["echo"].has("soak/0.json", "e")
    assert len(w._seen["echo"]) == 1


def test_seen_objects_stay_bounded_under_many_inserts() -> None:
    limit = 10_000
    seen = SeenObjects(limit)
    tracemalloc.start()
    try:
        for i in range(20 * limit):
            seen.add(f"soak/{i:08d}.json", f"{i:032x}")
            assert len(seen) <= limit
        size = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # The most recent half of the limit is always remembered.
    recent = range(20 * limit - limit // 2, 20 * limit)
    assert all(seen.has(f"soak/{i:08d}.json", f"{i:032x}") for i in recent)
    assert not seen.has("soak/00000000.json", f"{0:032x}")
    # Digests, not the strings: well under what a plain set of (key, etag) tuples takes.
    tracemalloc.start()
    try:
        pairs = {(f"soak/{i:08d}.json", f"{i:032x}") for i in range(limit)}
        plain = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(pairs) == limit
    assert size < 0.75 * plain, f"{size / limit:.0f} vs {plain / limit:.0f} bytes an entry"


def test_seen_digest_tells_key_and_etag_apart() -> None:
    seen = SeenObjects(100)
    seen.add("ab", "c")
    assert not seen.has("a", "bc")
    seen.add("k\udcff", "e")  # a lone surrogate (undecodable bytes in a key) is no crash
    assert seen.has("k\udcff", "e")
    assert sys.getsizeof(SeenObjects._digest("k", "e")) < 64

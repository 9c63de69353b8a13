"""The platform caps glibc's malloc arenas, so freed memory is reused across its threads.

Each case runs in a fresh interpreter: arenas are per process and, once made, stay."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from modelplane.allocator import arena_count

pytestmark = pytest.mark.skipif(arena_count() is None, reason="glibc only")

THREADS = """
import json, sys, threading
from modelplane.allocator import arena_count, limit_arenas
done = limit_arenas() if sys.argv[1] == "limit" else None
start = threading.Barrier(8)

def work():
    start.wait()  # all at once, so that each would take an arena of its own
    for _ in range(2000):
        b = bytearray(4096)  # above Python's small-object limit: from malloc
        del b

threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"limited": done, "arenas": arena_count()}))
"""


def _run(mode: str, **env: str) -> dict[str, object]:
    clean = {k: v for k, v in os.environ.items() if k not in ("MALLOC_ARENA_MAX", "GLIBC_TUNABLES")}
    out = subprocess.run(
        [sys.executable, "-c", THREADS, mode],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return dict(json.loads(out.stdout))


def test_eight_threads_share_two_arenas_once_limited() -> None:
    free = _run("free")
    limited = _run("limit")
    assert free["arenas"] > 2, free  # the default: an arena per thread (the test can fail)
    assert limited == {"limited": True, "arenas": 2}


def test_an_operators_setting_wins() -> None:
    assert _run("limit", MALLOC_ARENA_MAX="4")["limited"] is False
    assert _run("limit", GLIBC_TUNABLES="glibc.malloc.arena_max=3")["limited"] is False

"""Run ``modelplane`` with its memory watched from inside: for finding what grows in a soak.

    .venv/bin/python bench/memtrace.py OUT_DIR EVERY_S [--no-tracemalloc] -- up --data-dir …

``bench/soak.py --trace OUT_DIR`` starts the platform this way. Tracing starts after
``EVERY_S`` seconds (from the start it would make the imports alone take most of a minute);
from then on, every ``EVERY_S`` seconds a thread of the platform process writes
``OUT_DIR/NNN.json``: the seconds since start, ``/proc/self/smaps_rollup``, glibc's
``mallinfo2`` (bytes in use by malloc and bytes it holds free, i.e. fragmentation) and the
number of arenas (``NNN.malloc.xml``: ``malloc_info``, per arena), what SQLite has allocated
(``sqlite3_memory_used``), the size tracemalloc traces (Python's own allocations), the threads
by name, the connections the store's pools opened, the 60 commonest object types
(``gc.get_objects``), and beside it ``NNN.snap``, the tracemalloc snapshot.
``bench/memtrace.py --diff OUT_DIR A B`` then prints what grew between two of them: those
figures, the object types by count and the allocation sites by size.

``--no-tracemalloc`` leaves the snapshots out and keeps the rest, at full speed.
tracemalloc slows the process down (every allocation records its traceback), so the capacity
measured with it on is lower; its figures say *where* memory goes, not how fast the platform is.
SQLite's page cache and other C allocations are not traced: compare ``traced`` with the RSS and
with ``mallinfo2`` to tell Python objects from C memory and from fragmentation.
"""

from __future__ import annotations

import collections
import ctypes
import gc
import json
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

FRAMES = 12


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def mallinfo() -> dict[str, int]:
    """glibc's view of the heap: ``arena`` (main arena bytes from the kernel), ``hblkhd``
    (mmapped blocks), ``uordblks`` (in use), ``fordblks`` (free, kept)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        fn = libc.mallinfo2
    except (OSError, AttributeError):
        return {}
    fn.restype = _Mallinfo2
    info = fn()
    return {name: int(getattr(info, name)) for name, _ in _Mallinfo2._fields_}


def _malloc_info(path: Path) -> int | None:
    """Keep glibc's ``malloc_info`` XML (every arena's sizes) at ``path``; how many arenas."""
    try:
        from modelplane.allocator import arena_count, malloc_info
    except ImportError:  # a tree from before it
        return None
    info = malloc_info()
    if info is None:
        return None
    path.write_text(info)
    return arena_count(info)


def sqlite_memory() -> int | None:
    """Bytes SQLite has allocated (its page caches, mostly), all connections of the process."""
    try:
        lib = ctypes.CDLL("libsqlite3.so.0")  # the library the sqlite3 module has loaded
    except OSError:
        return None
    lib.sqlite3_memory_used.restype = ctypes.c_int64
    return int(lib.sqlite3_memory_used())


POOL_EVENTS: collections.Counter[str] = collections.Counter()
"""Connections the store's pools opened and closed (SQLAlchemy pool events, every pool)."""


def _count_pool_events() -> None:
    from sqlalchemy import event
    from sqlalchemy.pool import Pool

    for name in ("connect", "close", "checkout"):
        event.listen(Pool, name, lambda *_a, _n=name: POOL_EVENTS.update((_n,)))


def _pools() -> list[str]:
    from sqlalchemy.engine import Engine

    return [o.pool.status() for o in gc.get_objects() if isinstance(o, Engine)]


def _smaps() -> dict[str, int]:
    out = {}
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1]) * 1024
    return out


def _dump(out: Path, i: int, t0: float) -> None:
    if tracemalloc.is_tracing():
        tracemalloc.take_snapshot().dump(str(out / f"{i:03d}.snap"))
    types = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
    doc: dict[str, Any] = {
        "t": round(time.monotonic() - t0, 1),
        "traced": tracemalloc.get_traced_memory()[0],
        "smaps": _smaps(),
        "mallinfo": mallinfo(),
        "sqlite": sqlite_memory(),
        "arenas": _malloc_info(out / f"{i:03d}.malloc.xml"),
        "thread_names": sorted(t.name for t in threading.enumerate()),
        "threads": threading.active_count(),
        "pool_events": dict(POOL_EVENTS),
        "pools": _pools(),
        "types": types.most_common(60),
    }
    (out / f"{i:03d}.json").write_text(json.dumps(doc, indent=0))


def _watch(out: Path, every: float, python: bool) -> None:
    t0 = time.monotonic()
    # Tracing from the start would make the imports alone take most of a minute: it starts
    # after the first interval instead, so only what is allocated from then on is traced (the
    # growth is what counts).
    time.sleep(every)
    if python:
        tracemalloc.start(FRAMES)
    i = 0
    while True:
        time.sleep(every)
        i += 1
        try:
            _dump(out, i, t0)
        except Exception as exc:  # keep the platform running whatever happens here
            print(f"memtrace: {type(exc).__name__}: {exc}", file=sys.stderr)


def diff(out: Path, a: int, b: int, top: int = 25) -> None:
    da = json.loads((out / f"{a:03d}.json").read_text())
    db = json.loads((out / f"{b:03d}.json").read_text())
    mib = 1024 * 1024
    print(f"{a:03d} (t={da['t']} s) -> {b:03d} (t={db['t']} s)")
    for label, key in (("Rss", "Rss"), ("Anonymous", "Anonymous")):
        x, y = da["smaps"].get(key, 0), db["smaps"].get(key, 0)
        print(f"  {label:<10} {x / mib:8.1f} -> {y / mib:8.1f} MiB ({(y - x) / mib:+.1f})")
    print(
        f"  traced     {da['traced'] / mib:8.1f} -> {db['traced'] / mib:8.1f} MiB "
        f"({(db['traced'] - da['traced']) / mib:+.1f})"
    )
    for key in ("arena", "hblkhd", "uordblks", "fordblks"):
        x, y = da["mallinfo"].get(key, 0), db["mallinfo"].get(key, 0)
        print(f"  malloc {key:<9} {x / mib:7.1f} -> {y / mib:7.1f} MiB ({(y - x) / mib:+.1f})")
    x, y = da.get("sqlite") or 0, db.get("sqlite") or 0
    print(f"  sqlite     {x / mib:8.1f} -> {y / mib:8.1f} MiB ({(y - x) / mib:+.1f})")
    print(
        f"  threads {da['threads']} -> {db['threads']}; malloc arenas "
        f"{da.get('arenas')} -> {db.get('arenas')}"
    )
    print(f"  pool events {da.get('pool_events')} -> {db.get('pool_events')}")
    print(f"  pools {db.get('pools')}")
    ta, tb = dict(da["types"]), dict(db["types"])
    grown = sorted(((tb.get(k, 0) - ta.get(k, 0), k) for k in set(ta) | set(tb)), reverse=True)
    print("  object types that grew most (count):")
    for n, k in grown[:15]:
        print(f"    {n:+8d}  {k} ({tb.get(k, 0)})")
    if not (out / f"{a:03d}.snap").exists():
        return
    sa = tracemalloc.Snapshot.load(str(out / f"{a:03d}.snap"))
    sb = tracemalloc.Snapshot.load(str(out / f"{b:03d}.snap"))
    noise = [tracemalloc.Filter(False, tracemalloc.__file__)]
    sa, sb = sa.filter_traces(noise), sb.filter_traces(noise)
    for by in ("lineno", "traceback"):
        print(f"  allocation sites that grew most (by {by}):")
        for stat in sb.compare_to(sa, by)[: top if by == "lineno" else 5]:
            print(
                f"    {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks  "
                f"{stat.traceback.format()[-1].strip() if by == 'lineno' else ''}"
            )
            if by == "traceback":
                for line in stat.traceback.format(most_recent_first=True)[: 2 * FRAMES]:
                    print(f"        {line}")


def main() -> None:
    if sys.argv[1:2] == ["--diff"]:
        diff(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
        return
    out, every = Path(sys.argv[1]), float(sys.argv[2])
    rest = sys.argv[3:]
    python = rest[:1] != ["--no-tracemalloc"]
    if not python:
        rest = rest[1:]
    if rest[:1] == ["--"]:
        rest = rest[1:]
    out.mkdir(parents=True, exist_ok=True)
    threading.Thread(target=_watch, args=(out, every, python), name="memtrace", daemon=True).start()
    from modelplane.cli.main import main as modelplane

    _count_pool_events()

    sys.argv = ["modelplane", *rest]
    modelplane()


if __name__ == "__main__":
    main()

"""The C allocator of the platform process: few malloc arenas, so freed memory is reused.

glibc gives each thread that allocates its own arena (up to eight per core), and memory freed in
an arena stays with it. The platform's I/O threads (store, storage) and the threads of libraries
(watchfiles) each allocate transient buffers above Python's small-object limit from their own
arena; in a soak every new arena kept a megabyte or two of freed memory, and the process grew by
that, with the memory actually in use flat (``bench/memtrace.py``: glibc's ``mallinfo2`` had the
bytes in use steady and the free bytes rising, one arena per thread in ``malloc_info``). With
two arenas (the main thread's and one shared by the others) the freed memory is reused; the
threads mostly hold the GIL when they allocate, so sharing an arena costs little contention.

Only glibc has this knob (``mallopt(M_ARENA_MAX)``, the ``MALLOC_ARENA_MAX`` variable); elsewhere
nothing is done. An operator's own ``MALLOC_ARENA_MAX`` or ``GLIBC_TUNABLES`` setting wins.
"""

from __future__ import annotations

import ctypes
import os
import re
import tempfile
from pathlib import Path

ARENAS = 2
_M_ARENA_MAX = -8  # from glibc's malloc.h


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt  # noqa: B018 - glibc only
    except (OSError, AttributeError):
        return None
    return libc


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Cap the number of malloc arenas of this process; True if done. Call it before the
    threads start: arenas that exist stay."""
    if "MALLOC_ARENA_MAX" in os.environ or "arena_max" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    libc = _libc()
    if libc is None:
        return False
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(libc.mallopt(_M_ARENA_MAX, arenas))


def malloc_info() -> str | None:
    """glibc's ``malloc_info`` XML: the sizes of every arena, None if not glibc."""
    libc = _libc()
    if libc is None or not hasattr(libc, "malloc_info"):
        return None
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "malloc.xml"
        fp = libc.fopen(str(path).encode(), b"w")
        if not fp:
            return None
        libc.malloc_info(0, fp)
        libc.fclose(fp)
        return path.read_text()


def arena_count(info: str | None = None) -> int | None:
    """How many malloc arenas this process has (or ``info``, a :func:`malloc_info`, shows)."""
    info = malloc_info() if info is None else info
    return None if info is None else len(re.findall(r'<heap nr="\d+">', info))

"""A tiny HTTP/1.1 client on asyncio streams, stdlib only, shared by the cold-start scripts.

``bench/coldstart.py`` (platform venv) and ``bench/ray_serve_coldstart.py`` (Ray's venv) time
requests with the same code, so the client's own cost is the same on both sides. Each request
opens its own connection (``Connection: close``), as a client arriving at a scaled-to-zero
service would. Only ``127.0.0.1`` is ever a target.

Also here: VmRSS / PSS readers and the process-tree walk both scripts use for memory figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import statistics
import time
from dataclasses import dataclass

HOST = "127.0.0.1"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float  # from before connect to the last byte of the body
    error: str = ""


async def post(port: int, path: str, body: bytes, headers: dict[str, str] | None = None,
               timeout: float = 60.0) -> Answer:
    """POST ``body`` as JSON to 127.0.0.1:port/path on a fresh connection; never raises."""
    t0 = time.perf_counter()
    try:
        return await asyncio.wait_for(_post(port, path, body, headers or {}, t0), timeout)
    except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as e:
        return Answer(0, {}, b"", time.perf_counter() - t0, error=repr(e))


async def _post(port: int, path: str, body: bytes, headers: dict[str, str], t0: float) -> Answer:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        head = [f"POST {path} HTTP/1.1", f"Host: {HOST}:{port}",
                "Content-Type: application/json", f"Content-Length: {len(body)}",
                "Connection: close"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        raw = await reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                k, _, v = line.partition(":")
                hdrs[k.strip().lower()] = v.strip()
        if "content-length" in hdrs:
            data = await reader.readexactly(int(hdrs["content-length"]))
        elif hdrs.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            data = b"".join(parts)
        else:
            data = await reader.read()
        return Answer(status, hdrs, data, time.perf_counter() - t0)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def burst(n: int, port: int, path: str, body: bytes, headers: dict[str, str] | None = None,
                timeout: float = 60.0) -> list[Answer]:
    """``n`` requests sent at once (each its own connection), gathered."""
    return list(await asyncio.gather(*(post(port, path, body, headers, timeout)
                                       for _ in range(n))))


def percentile(xs: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no data."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = max(0, min(len(s) - 1, math.ceil(q / 100 * len(s)) - 1))
    return s[k]


def summary(xs: list[float]) -> dict[str, float]:
    """median, min, max, and the population stdev of a sample."""
    if not xs:
        return {"n": 0, "median": float("nan"), "min": float("nan"), "max": float("nan"),
                "stdev": float("nan")}
    return {"n": len(xs), "median": float(statistics.median(xs)), "min": min(xs),
            "max": max(xs), "stdev": float(statistics.pstdev(xs))}


# -- memory ---------------------------------------------------------------------------------------


def rss_bytes(pid: int) -> int | None:
    """VmRSS of a process from /proc, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def pss_bytes(pid: int) -> int | None:
    """Proportional set size (shared pages split between their users), or None."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def descendants(*roots: int) -> list[int]:
    """``roots`` and every process below them (by parent pid)."""
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(entry))
    seen: list[int] = []
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.append(pid)
            todo.extend(kids.get(pid, []))
    return seen

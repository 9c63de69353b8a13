"""Request times for the simulator: synthesized from a rate and a pattern, or read from a trace.

Synthesized traffic is seeded, so the same question gets the same answer:

- ``steady``: a Poisson stream at the given rate;
- ``bursty``: bursts of ``peak_concurrency`` requests arriving together (within 50 ms), the
  bursts themselves a Poisson stream, at the same overall rate;
- ``spaced``: single requests at regular intervals (±10 % jitter).

A trace is a CSV (one timestamp per line, or a column named ``timestamp``, ``time`` or ``t``)
or JSON (a list of timestamps, a list of objects with one of those keys, or
``{"timestamps": [...]}``); timestamps are seconds (any origin) or ISO 8601 date-times.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
from datetime import datetime
from typing import Any

from modelplane.advisor.rules import Pattern
from modelplane.errors import InvalidInput

__all__ = ["MAX_TRACE", "parse_trace", "synthesize"]

MAX_TRACE = 2_000_000
_KEYS = ("timestamp", "time", "t", "ts", "at")


def synthesize(
    pattern: Pattern, requests_per_hour: float, seconds: float, *, peak: int = 8, seed: int = 0
) -> list[float]:
    """Request times in ``[0, seconds)`` for ``pattern`` at ``requests_per_hour``."""
    rng = random.Random(seed)
    rate = requests_per_hour / 3600.0
    if rate <= 0 or seconds <= 0:
        return []
    out: list[float] = []
    if pattern is Pattern.spaced:
        gap = 1.0 / rate
        t = gap / 2
        while t < seconds:
            out.append(t + rng.uniform(-0.1, 0.1) * gap)
            t += gap
        return sorted(x for x in out if 0 <= x < seconds)
    size = max(1, peak) if pattern is Pattern.bursty else 1
    t = 0.0
    while True:
        t += rng.expovariate(rate / size)
        if t >= seconds:
            break
        if size == 1:
            out.append(t)
        else:
            out.extend(t + rng.uniform(0, 0.05) for _ in range(size))
    out.sort()
    return [x for x in out if x < seconds]


def parse_trace(data: bytes | str, filename: str = "") -> list[float]:
    """Request times from a trace, shifted to start at 0 and sorted.

    Raises :class:`InvalidInput` naming what is wrong (empty, unparsable value, too long).
    """
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    stripped = text.lstrip()
    if not stripped:
        raise InvalidInput("the trace is empty: give one request timestamp per line")
    if filename.lower().endswith(".json") or stripped[0] in "[{":
        values = _from_json(stripped)
    else:
        values = _from_csv(text)
    if len(values) > MAX_TRACE:
        raise InvalidInput(f"the trace has {len(values):,} requests; at most {MAX_TRACE:,}")
    if not values:
        raise InvalidInput("the trace holds no timestamps")
    times = sorted(_seconds(v, i) for i, v in enumerate(values))
    origin = times[0]
    return [t - origin for t in times]


def _from_json(text: str) -> list[Any]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"the trace is not valid JSON: {exc}") from None
    if isinstance(doc, dict):
        for key in ("timestamps", "requests", "trace"):
            if isinstance(doc.get(key), list):
                doc = doc[key]
                break
        else:
            raise InvalidInput('a JSON trace is a list of timestamps or {"timestamps": [...]}')
    if not isinstance(doc, list):
        raise InvalidInput('a JSON trace is a list of timestamps or {"timestamps": [...]}')
    out = []
    for i, item in enumerate(doc):
        if isinstance(item, dict):
            found = [k for k in _KEYS if k in item]
            if not found:
                raise InvalidInput(f"trace entry {i}: no timestamp field (one of {_KEYS})")
            item = item[found[0]]
        out.append(item)
    return out


def _from_csv(text: str) -> list[Any]:
    rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
    if not rows:
        return []
    column = 0
    header = [c.strip().lower() for c in rows[0]]
    if any(h in _KEYS for h in header):
        column = next(i for i, h in enumerate(header) if h in _KEYS)
        rows = rows[1:]
    elif not _is_number(rows[0][0]) and not _is_datetime(rows[0][0]):
        rows = rows[1:]  # some other header
    out = []
    for n, row in enumerate(rows):
        if column >= len(row):
            raise InvalidInput(f"trace line {n + 2}: no column {column + 1}")
        out.append(row[column].strip())
    return out


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _seconds(value: Any, index: int) -> float:
    if isinstance(value, bool):
        raise InvalidInput(f"trace entry {index}: {value!r} is not a timestamp")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                raise InvalidInput(
                    f"trace entry {index}: {value!r} is neither seconds nor an ISO 8601 time"
                ) from None
            seconds = when.timestamp()
    else:
        raise InvalidInput(f"trace entry {index}: {value!r} is not a timestamp")
    if not math.isfinite(seconds):
        raise InvalidInput(f"trace entry {index}: {value!r} is not a finite number")
    return seconds

"""What this node offers to replicas: CPU cores, memory and GPUs.

Probed once when the platform starts (``probe``) or declared in settings; never re-read. Parsing
is separated from reading so the parsers are tested on fixed text.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from modelplane.resources.amounts import Usage, fmt_bytes

DEFAULT_CPU_ALLOCATION_RATIO = 8.0
"""Cores are time-shared, so by default a node offers this many reservable cores per core
(OpenStack's ``cpu_allocation_ratio`` is the same idea). Memory and GPUs are never overcommitted."""


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str = "GPU"
    memory: int = 0
    """Bytes of device memory, 0 if unknown."""


@dataclass(frozen=True)
class Inventory:
    cpu: float
    """Reservable cores."""
    memory: int
    """Reservable bytes."""
    gpus: tuple[Gpu, ...] = ()
    cores: int = 0
    """Cores this process may run on, as probed (for display)."""
    source: str = "probed"

    @property
    def total(self) -> Usage:
        return Usage(self.cpu, self.memory, len(self.gpus))

    def to_dict(self) -> dict[str, object]:
        return {
            "cpu": self.cpu,
            "cores": self.cores,
            "memory": self.memory,
            "memory_human": fmt_bytes(self.memory),
            "gpus": [{"index": g.index, "name": g.name, "memory": g.memory} for g in self.gpus],
            "source": self.source,
        }


def count_cores() -> int:
    """Cores this process may use (its CPU affinity), else all the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def parse_meminfo(text: str) -> int | None:
    """Bytes of ``MemTotal`` in the text of ``/proc/meminfo``."""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "MemTotal":
            parts = value.split()
            if parts and parts[0].isdigit():
                unit = parts[1].lower() if len(parts) > 1 else "b"
                return int(parts[0]) * (1024 if unit == "kb" else 1)
    return None


def read_memory() -> int:
    try:
        with open("/proc/meminfo") as f:
            found = parse_meminfo(f.read())
    except OSError:
        found = None
    if found is not None:
        return found
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 4 * 2**30


NVIDIA_SMI_QUERY = ["--query-gpu=index,name,memory.total", "--format=csv,noheader"]


def parse_nvidia_smi(text: str) -> tuple[Gpu, ...]:
    """GPUs from ``nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader``,
    lines like ``0, NVIDIA A100-SXM4-40GB, 40960 MiB``."""
    gpus = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 2 or not parts[0].isdigit():
            continue
        memory = 0
        if len(parts) >= 3:
            amount, _, unit = parts[2].partition(" ")
            if amount.isdigit():
                memory = int(amount) * {"MiB": 2**20, "GiB": 2**30, "KiB": 2**10}.get(unit, 1)
        gpus.append(Gpu(int(parts[0]), parts[1], memory))
    return tuple(gpus)


Runner = Callable[[Sequence[str]], str | None]
"""Runs a command, returning its stdout, or None if it cannot run or fails."""


def run_command(argv: Sequence[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def probe_gpus(run: Runner = run_command) -> tuple[Gpu, ...]:
    out = run(["nvidia-smi", *NVIDIA_SMI_QUERY])
    return parse_nvidia_smi(out) if out else ()


def probe(
    *,
    cpus: float | None = None,
    memory: int | None = None,
    gpus: Sequence[int] | None = None,
    cpu_allocation_ratio: float = DEFAULT_CPU_ALLOCATION_RATIO,
    run: Runner = run_command,
) -> Inventory:
    """The node's inventory. Declared values win; the rest is probed (once: call at start-up).

    ``gpus`` declares the GPU device indices (``()`` for none); None asks ``nvidia-smi``.
    """
    cores = count_cores()
    given = (("cpus", cpus), ("memory", memory), ("gpus", gpus))
    declared = [name for name, value in given if value is not None]
    found_gpus = tuple(Gpu(i) for i in gpus) if gpus is not None else probe_gpus(run)
    return Inventory(
        cpu=float(cpus) if cpus is not None else cores * cpu_allocation_ratio,
        memory=memory if memory is not None else read_memory(),
        gpus=found_gpus,
        cores=cores,
        source=f"declared {', '.join(declared)}; rest probed" if declared else "probed",
    )


def parse_gpus(text: str) -> tuple[int, ...]:
    """``--gpus`` values: ``2`` means devices 0 and 1; ``0,2`` (or ``3,``) names the devices."""
    text = text.strip()
    if "," not in text:
        if not text.isdigit():
            raise ValueError(f"--gpus {text!r}: give a count (2) or device indices (0,2)")
        return tuple(range(int(text)))
    indices = [p.strip() for p in text.split(",") if p.strip()]
    if not all(p.isdigit() for p in indices) or len(set(indices)) != len(indices):
        raise ValueError(f"--gpus {text!r}: device indices must be distinct numbers, e.g. 0,2")
    return tuple(int(p) for p in indices)

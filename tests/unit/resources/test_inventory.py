"""The inventory: parsers on fixed text; probing with declared values and a fake runner."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from modelplane.resources.inventory import (
    Gpu,
    parse_gpus,
    parse_meminfo,
    parse_nvidia_smi,
    probe,
)

SMI = "0, NVIDIA A100-SXM4-40GB, 40960 MiB\n1, NVIDIA A100-SXM4-40GB, 40960 MiB\n"


def test_parse_nvidia_smi() -> None:
    assert parse_nvidia_smi(SMI) == (
        Gpu(0, "NVIDIA A100-SXM4-40GB", 40960 * 2**20),
        Gpu(1, "NVIDIA A100-SXM4-40GB", 40960 * 2**20),
    )
    assert parse_nvidia_smi("") == ()
    assert parse_nvidia_smi("No devices were found\n") == ()


def test_parse_meminfo() -> None:
    assert parse_meminfo("MemTotal:       24683656 kB\nMemFree: 1 kB\n") == 24683656 * 1024
    assert parse_meminfo("nothing here") is None


def test_probe_asks_nvidia_smi_once_and_declared_values_win() -> None:
    calls: list[Sequence[str]] = []

    def runner(argv: Sequence[str]) -> str | None:
        calls.append(argv)
        return SMI

    found = probe(run=runner, cpu_allocation_ratio=2.0)
    assert [g.index for g in found.gpus] == [0, 1] and len(calls) == 1
    assert found.cpu == found.cores * 2.0 and found.memory > 0
    declared = probe(cpus=3, memory=2**30, gpus=(0, 2), run=runner)
    assert len(calls) == 1, "declared GPUs: nvidia-smi is not run"
    assert (declared.cpu, declared.memory, [g.index for g in declared.gpus]) == (3.0, 2**30, [0, 2])
    assert "declared" in declared.source


def test_no_nvidia_smi_means_no_gpus() -> None:
    assert probe(run=lambda argv: None).gpus == ()


def test_parse_gpus_flag() -> None:
    assert parse_gpus("2") == (0, 1)
    assert parse_gpus("0,2") == (0, 2)
    assert parse_gpus("3,") == (3,)
    assert parse_gpus("0") == ()
    with pytest.raises(ValueError):
        parse_gpus("two")
    with pytest.raises(ValueError):
        parse_gpus("1,1")

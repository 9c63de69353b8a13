"""Placement: pure decisions over a declared inventory (no GPU needed)."""

from __future__ import annotations

from modelplane.resources.amounts import Usage
from modelplane.resources.inventory import Gpu, Inventory
from modelplane.resources.placement import Grant, Refusal, admit, never_fits, place

GiB = 2**30
NODE = Inventory(cpu=4.0, memory=8 * GiB, gpus=(Gpu(0), Gpu(1)), cores=4, source="declared")


def test_grants_distinct_gpu_devices_until_none_is_left() -> None:
    held: list[Grant] = []
    for expected in ((0,), (1,)):
        grant = place(NODE, held, Usage(1, GiB, 1))
        assert isinstance(grant, Grant) and grant.gpus == expected
        held.append(grant)
    refused = place(NODE, held, Usage(1, GiB, 1))
    assert isinstance(refused, Refusal) and refused.reason == "node"
    assert refused.message == (
        "not enough free resources on the node: gpu: needs 1 GPU, 0 GPUs free of 2 GPUs "
        "(short by 1 GPU)"
    )


def test_released_device_is_given_again() -> None:
    first = place(NODE, [], Usage(1, GiB, 1))
    second = place(NODE, [first], Usage(1, GiB, 1))  # type: ignore[list-item]
    assert isinstance(second, Grant)
    again = place(NODE, [second], Usage(1, GiB, 1))
    assert isinstance(again, Grant) and again.gpus == (0,)


def test_cuda_visible_devices() -> None:
    assert Grant(1, GiB, (1,)).env(NODE) == {"CUDA_VISIBLE_DEVICES": "1"}
    assert Grant(1, GiB, ()).env(NODE) == {"CUDA_VISIBLE_DEVICES": ""}
    no_gpus = Inventory(cpu=4, memory=GiB)
    assert Grant(1, GiB, ()).env(no_gpus) == {}


def test_refusal_names_every_short_resource_and_by_how_much() -> None:
    held = [Grant(3.5, 7 * GiB)]
    refused = place(NODE, held, Usage(1, 2 * GiB, 0))
    assert isinstance(refused, Refusal)
    by = {s.resource: s.short_by for s in refused.shortages}
    assert by == {"cpu": 0.5, "memory": GiB}
    assert "cpu: needs 1 core, 0.5 cores free of 4 cores (short by 0.5 cores)" in refused.message
    assert "memory: needs 2 GiB, 1 GiB free of 8 GiB (short by 1 GiB)" in refused.message


def test_set_aside_capacity_is_not_given_away() -> None:
    refused = place(NODE, [], Usage(1, GiB, 1), set_aside=Usage(0, 0, 2))
    assert isinstance(refused, Refusal) and refused.shortages[0].resource == "gpu"


def test_fractional_cpu_fits_exactly() -> None:
    held = [Grant(0.1, 0), Grant(0.2, 0)]
    node = Inventory(cpu=0.6, memory=GiB)
    assert isinstance(place(node, held, Usage(0.3, 1)), Grant)


def test_bigger_than_the_node_is_never() -> None:
    refused = never_fits(NODE, Usage(1, GiB, 3))
    assert refused is not None and refused.reason == "never"
    assert "bigger than the whole node" in refused.message
    assert never_fits(NODE, Usage(4, 8 * GiB, 2)) is None
    assert admit(NODE, Usage(), Usage(4, 8 * GiB, 2)) is None
    several = admit(NODE, Usage(2, 0, 0), Usage(3, 0, 0))
    assert isinstance(several, Refusal) and several.shortages[0].short_by == 1

"""The Ray backend's pure parts: actor options from a spec, and refusing what no node can hold."""

from __future__ import annotations

import pytest

from modelplane.backends.ray.placement import (
    NodeInfo,
    actor_options,
    claim_bundle,
    never_fits,
    spread_target,
)
from modelplane.errors import InvalidSpec
from modelplane.spec import DeploymentSpec

SMALL = NodeInfo("n1", "10.0.0.1", {"CPU": 2, "memory": 4 * 2**30, "small": 2})
GPU = NodeInfo("n2", "10.0.0.2", {"CPU": 2, "memory": 4 * 2**30, "GPU": 2})


def spec(**resources: object) -> DeploymentSpec:
    return DeploymentSpec.model_validate(
        {"name": "m", "model": {"path": "/m"}, "resources": resources}
    )


def test_actor_options_carry_cpu_gpu_memory_and_custom_resources() -> None:
    assert actor_options(spec(cpu=0.5, gpu=1, memory="1Gi", custom={"small": 1})) == {
        "num_cpus": 0.5,
        "num_gpus": 1,
        "memory": 2**30,
        "resources": {"small": 1.0},
    }
    assert "resources" not in actor_options(spec(cpu=1))


def test_fits_when_one_node_has_everything() -> None:
    assert never_fits(spec(cpu=1, gpu=2), [SMALL, GPU]) is None
    assert never_fits(spec(cpu=2, custom={"small": 2}), [SMALL, GPU]) is None


def test_names_what_is_short_and_the_most_any_node_has() -> None:
    why = never_fits(spec(cpu=1, gpu=3), [SMALL, GPU])
    assert why == "no node of the Ray cluster has 3 GPUs (the most any node has: 2 GPUs)"
    why = never_fits(spec(cpu=1, memory="8Gi"), [SMALL, GPU])
    assert why is not None and "8192 MiB of memory" in why and "4096 MiB" in why


def test_everything_exists_but_not_on_one_node() -> None:
    why = never_fits(spec(cpu=1, gpu=1, custom={"small": 1}), [SMALL, GPU])
    assert why is not None and why.startswith("no single node of the Ray cluster has all of")


def test_an_empty_cluster_is_said_so() -> None:
    assert never_fits(spec(), []) == "the Ray cluster has no alive node"


def test_custom_resources_are_validated_and_omitted_when_empty() -> None:
    assert "custom" not in spec().model_dump(mode="json")["resources"]
    assert spec(custom={"tpu": 1}).model_dump(mode="json")["resources"]["custom"] == {"tpu": 1.0}
    body = {"name": "m", "model": {"path": "/m"}, "resources": {"custom": {"CPU": 1}}}
    with pytest.raises(InvalidSpec, match="not CPU, GPU or memory"):
        DeploymentSpec.parse(body)


def test_a_claim_bundle_holds_cpu_memory_and_custom_resources_and_no_zero() -> None:
    assert claim_bundle(spec(cpu=0.5, memory="1Gi", custom={"small": 1})) == {
        "CPU": 0.5,
        "memory": float(2**30),
        "small": 1.0,
    }


def test_the_spread_hint_is_the_node_running_fewest_replicas_ties_to_a_warm_one() -> None:
    other = NodeInfo("n3", "10.0.0.3", {"CPU": 2, "memory": 4 * 2**30})
    nodes = [SMALL, GPU, other]
    s = spec(cpu=1)
    assert spread_target(s, nodes, {"n1", "n3"}, {}) == "n1"  # ties: warm, then node id
    assert spread_target(s, nodes, {"n3"}, {}) == "n3"
    assert spread_target(s, nodes, {"n1", "n3"}, {"n1": 1}) == "n3"
    assert spread_target(s, nodes, {"n1", "n3"}, {"n1": 1, "n3": 1}) == "n2"  # fewest beats warm
    # A node whose template is late (or lost) still gets its share.
    assert spread_target(s, nodes, {"n1"}, {"n1": 1, "n3": 1}) == "n2"
    assert spread_target(s, nodes, set(), {}) == "n1"
    assert spread_target(spec(cpu=1, custom={"small": 1}), nodes, {"n3"}, {}) == "n1"
    assert spread_target(spec(cpu=8), nodes, {"n1"}, {}) is None  # no node could hold it

"""A real local multi-node Ray cluster for the Ray backend's tests, one per session (on two
cores it takes ~30 s to start): the runtime-backend conformance suite and the Ray backend's own
tests share it. A test that takes a node away adds its replacement (``replace_small``). The head
has no CPUs (nothing lands there), a "small" worker declares a custom resource, and a "gpu" worker
declares two GPUs (this machine has none: Ray schedules and assigns declared GPUs all the same,
which is what placement needs)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

RAY_MISSING = importlib.util.find_spec("ray") is None
RAY_MISSING_REASON = 'Ray is not installed: pip install "modelplane[ray]"'
GiB = 2**30


@dataclass
class RayCluster:
    cluster: Any
    address: str
    small: Any
    gpu: Any

    def node_id(self, node: Any) -> str:
        return str(node.node_id)

    def replace_small(self) -> Any:
        """A new "small" node in place of the one a test removed."""
        self.small = self.cluster.add_node(num_cpus=2, memory=3 * GiB, resources={"small": 2})
        self.cluster.wait_for_nodes()
        return self.small


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    if RAY_MISSING:
        pytest.skip(RAY_MISSING_REASON)
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "include_dashboard": False},
    )
    try:
        small = cluster.add_node(num_cpus=2, memory=3 * GiB, resources={"small": 2})
        gpu = cluster.add_node(num_cpus=2, num_gpus=2, memory=3 * GiB)
        ray.init(address=cluster.address, namespace="modelplane", log_to_driver=False)
        cluster.wait_for_nodes()
        yield RayCluster(cluster, cluster.address, small, gpu)
    finally:
        ray.shutdown()
        cluster.shutdown()


def serve_detached() -> None:  # pragma: no cover - runs as its own process
    """``python -m tests.raycluster``: a head (no CPU) and one worker node, not joined by this
    process, for a test that kills the head: prints ``{"address", "gcs_pid"}``, then keeps the
    cluster until its stdin closes."""
    import json
    import sys

    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False}
    )
    try:
        cluster.add_node(num_cpus=2, memory=3 * GiB)
        cluster.wait_for_nodes()
        gcs = cluster.head_node.all_processes["gcs_server"][0].process.pid
        print(json.dumps({"address": cluster.address, "gcs_pid": gcs}), flush=True)
        sys.stdin.read()
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    serve_detached()

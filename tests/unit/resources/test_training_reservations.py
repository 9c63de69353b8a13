"""A training's grant in the reservation book: beside its deployment's replicas, never in their
place, counted by quotas and by admission (pure book, no processes)."""

from __future__ import annotations

from typing import Any

import pytest

from modelplane.errors import InsufficientResources
from modelplane.resources.amounts import Usage
from modelplane.resources.inventory import Gpu, Inventory
from modelplane.resources.placement import Grant, Refusal
from modelplane.resources.quota import Quota
from modelplane.resources.reservations import ReservationBook, per_replica
from modelplane.spec import DeploymentSpec

GiB = 2**30
NODE = Inventory(cpu=4.0, memory=8 * GiB, gpus=(Gpu(0), Gpu(1)), source="declared")


def _spec(name: str, **kw: Any) -> DeploymentSpec:
    body: dict[str, Any] = {"name": name, "model": {"path": "/m"}, "mode": "dedicated"}
    return DeploymentSpec.parse(body | kw)


def test_a_training_takes_a_gpu_no_replica_holds_and_gives_it_back() -> None:
    book = ReservationBook(NODE)
    spec = _spec("d", resources={"gpu": 1, "cpu": 1})
    book.commit("d", "ann", spec)
    assert isinstance(book.reserve("d-1", "d", "ann", per_replica(spec)), Grant)
    granted = book.reserve_training("train-x", "d", "ann", per_replica(spec))
    assert isinstance(granted, Grant) and granted.gpus == (1,)
    assert granted.env(NODE) == {"CUDA_VISIBLE_DEVICES": "1"}
    view = book.view()
    assert view["deployments"]["d"]["trainings"] == {
        "train-x": {"cpu": 1.0, "memory": 512 * 2**20, "gpu": 1, "gpu_devices": [1]}
    }
    assert view["free"]["gpu"] == 0
    again = book.reserve_training("train-y", "d", "ann", per_replica(spec))
    assert isinstance(again, Refusal) and "short by 1 GPU" in again.message
    book.release("train-x")
    assert book.view()["free"]["gpu"] == 1 and book.view()["deployments"]["d"]["trainings"] == {}


def test_a_training_never_takes_what_its_own_deployment_is_promised() -> None:
    book = ReservationBook(NODE)
    spec = _spec("d", scale={"replicas": 2}, resources={"gpu": 1})
    book.commit("d", "ann", spec)  # two GPUs promised, no replica running yet
    refused = book.reserve_training("train-x", "d", "ann", per_replica(spec))
    assert isinstance(refused, Refusal) and refused.reason == "node"
    # ... while a replica may take its own deployment's promise
    assert isinstance(book.reserve("d-1", "d", "ann", per_replica(spec)), Grant)


def test_quota_and_admission_count_a_training_on_top_of_the_promise() -> None:
    book = ReservationBook(NODE, {"ann": Quota(cpu=2)})
    spec = _spec("d", resources={"cpu": 1})
    book.commit("d", "ann", spec)
    # the replica is not running, but promised: the training is a second core
    assert isinstance(book.reserve_training("train-x", "d", "ann", Usage(1, 2**20)), Grant)
    over = book.reserve_training("train-y", "d", "ann", Usage(1, 2**20))
    assert isinstance(over, Refusal) and over.reason == "quota"
    # a deploy that would need the cores the training holds does not fit
    with pytest.raises(InsufficientResources):
        book.admit(_spec("e", resources={"cpu": 3}), "bob", creating=True)


def test_a_training_found_running_after_a_restart_holds_its_devices_again() -> None:
    book = ReservationBook(NODE)
    book.restore_training("train-x", "d", "ann", Grant(1.0, GiB, (1,)))
    spec = _spec("e", resources={"gpu": 1})
    book.commit("e", "bob", spec)
    granted = book.reserve("e-1", "e", "bob", per_replica(spec))
    assert isinstance(granted, Grant) and granted.gpus == (0,)

"""Costs from a deployment's recorded history; probe inputs from a schema; the request body."""

from __future__ import annotations

import threading

import pytest
import yaml
from pydantic import ValidationError

from modelplane.advisor.costs import Costs, ServiceTime
from modelplane.advisor.measure import from_history, other_load, probe, sample_input
from modelplane.advisor.request import AdviseRequest


def view(**status: object) -> dict:
    return {"status": {"replicas": [], "cold_starts": [], **status}, "events": []}


def test_costs_from_recorded_cold_starts_and_answers() -> None:
    v = view(
        cold_starts=[
            {"seconds": 0.52, "load_seconds": 0.50},
            {"seconds": 0.54, "load_seconds": 0.51},
            {"seconds": 0.53, "load_seconds": 0.50},
        ]
    )
    costs = from_history(v, [0.05, 0.06, 0.04])
    assert costs is not None and costs.source == "history"
    assert costs.load_seconds == pytest.approx(0.50)
    assert costs.start_overhead == pytest.approx(0.03)
    assert costs.service.mean == pytest.approx(0.05)


def test_ready_events_stand_in_for_cold_starts_of_dedicated_replicas() -> None:
    v = view(replicas=[{"load_seconds": 1.0}])
    v["events"] = [{"kind": "ready", "message": "ready in 1.020 s"}]
    costs = from_history(v, [0.1])
    assert costs is not None and costs.start_overhead == pytest.approx(0.02)


def test_no_history_is_none() -> None:
    assert from_history(view(), [0.1]) is None
    assert from_history(view(cold_starts=[{"seconds": 1, "load_seconds": 1}]), []) is None


def test_sample_input_satisfies_the_digits_schema(examples) -> None:  # type: ignore[no-untyped-def]
    import jsonschema

    meta = yaml.safe_load((examples / "digits" / "modelplane.yaml").read_text())
    sample = sample_input(meta["input_schema"])
    jsonschema.validate(sample, meta["input_schema"])
    assert len(sample["image"]) == 8


BASE = {"costs": {"load_seconds": 0.5, "service_seconds": [0.05]}}


def test_request_needs_traffic_and_one_source_of_costs() -> None:
    AdviseRequest.model_validate({**BASE, "requests_per_hour": 10})
    with pytest.raises(ValidationError, match="exactly one of deployment"):
        AdviseRequest.model_validate({"requests_per_hour": 10})
    with pytest.raises(ValidationError, match="how much traffic"):
        AdviseRequest.model_validate(BASE)
    with pytest.raises(ValidationError, match="not both"):
        AdviseRequest.model_validate({**BASE, "requests_per_hour": 1, "trace": [1.0]})
    with pytest.raises(ValidationError, match=r"greater than or equal to 0\.000001"):
        AdviseRequest.model_validate({**BASE, "requests_per_hour": 0})
    # so small a rate once underflowed to 0 requests/s and divided by it (a 500)
    with pytest.raises(ValidationError, match=r"greater than or equal to 0\.000001"):
        AdviseRequest.model_validate({**BASE, "requests_per_hour": 5e-324})
    with pytest.raises(ValidationError, match="Extra inputs"):
        AdviseRequest.model_validate({**BASE, "requests_per_hour": 1, "rph": 2})


def test_the_template_building_first_start_is_not_taken_for_a_recurring_one() -> None:
    starts = [{"seconds": 7.5, "load_seconds": 0.30}] + [
        {"seconds": s, "load_seconds": 0.30} for s in (0.33, 0.35, 0.34)
    ]
    costs = from_history(view(cold_starts=starts), [0.02])
    assert costs is not None
    assert costs.startup_samples == (0.33, 0.35, 0.34)
    assert costs.start_overhead == pytest.approx(0.04)


class FakePlatform:
    """A :class:`ProbeTarget` on a fake clock: each cold request records a start of 0.6 s (0.5 s
    of it the load), a warm one takes 40 ms of service plus a 3 ms hop."""

    def __init__(self) -> None:
        self.now = 0.0
        self.deployed: dict[str, dict] = {}
        self.answers: list[float] = []
        self.warm = False
        self.deleted: list[str] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.warm = False  # the probe waits for zero: the replica goes

    def deploy(self, spec: object) -> dict:
        self.deployed[spec.name] = {"cold_starts": []}  # type: ignore[attr-defined]
        return {}

    def get(self, name: str) -> dict:
        colds = self.deployed[name]["cold_starts"]
        replicas = [{"state": "ready"}] if self.warm else []
        return {"status": {"replicas": replicas, "cold_starts": colds, "model": {}}}

    def predict(self, name: str, inputs: object = None) -> dict:
        if not self.warm:
            self.deployed[name]["cold_starts"].append({"seconds": 0.6, "load_seconds": 0.5})
            self.now += 0.6
            self.warm = True
        service = 0.040 + 0.001 * (len(self.answers) % 3)
        self.answers.append(service)
        self.now += service + 0.003
        return {}

    def delete(self, name: str) -> None:
        self.deleted.append(name)

    def service_times(self, name: str) -> list[float]:
        return list(self.answers)


def test_the_probe_splits_each_warm_round_trip_into_service_and_platform_hop() -> None:
    fake = FakePlatform()
    costs = probe(
        fake, "/m", body={}, warm=6, cold=2, gap=0.0, monotonic=fake.monotonic, sleep=fake.sleep
    )
    assert costs.load_seconds == pytest.approx(0.5)
    assert costs.start_overhead == pytest.approx(0.1)
    # the service times are the gateway's, the rest of each round trip is the hop
    assert list(costs.service.samples) == fake.answers[-6:]
    assert costs.hop is not None
    assert costs.hop.samples == pytest.approx([0.003] * 6)
    [record] = fake.deployed.values()
    assert len(record["cold_starts"]) == 3  # the first start, then two from zero
    assert fake.deleted == list(fake.deployed)
    assert costs.to_dict()["hop_seconds_p50"] == pytest.approx(0.003)


def slowdown(other: float, n: int, cores: float) -> float:
    """How much ``n`` starts together slow each other under fair sharing (the model)."""
    return min(1.0, cores / (other + 1)) / min(1.0, cores / (other + n))


@pytest.mark.parametrize("other", [0.0, 0.5, 1.0, 2.5, 4.0, 9.0])
def test_other_load_is_what_explains_the_measured_slowdown(other: float) -> None:
    s = slowdown(other, 4, 2.0)
    costs = Costs(
        0.1,
        0.0,
        ServiceTime(mean_seconds=0.01),
        startup_samples=(0.2, 0.2, 0.2),
        concurrent_startups=(0.2 * s,) * 4,
        concurrency=4,
    )
    inferred = other_load(costs, 2.0)
    # (a slowdown of 2x to 2.5x has two explanations, e.g. 2x: an idle node or 2 other
    # processes; the smaller load is taken)
    assert inferred == pytest.approx(other)
    assert slowdown(inferred, 4, 2.0) == pytest.approx(s)


def test_other_load_without_concurrent_starts_is_none() -> None:
    base = Costs(0.1, 0.0, ServiceTime(mean_seconds=0.01), startup_samples=(0.2,))
    assert other_load(base, 2.0) == 0.0
    same = Costs(
        0.1,
        0.0,
        ServiceTime(mean_seconds=0.01),
        startup_samples=(0.2,),
        concurrent_startups=(0.2, 0.2),
        concurrency=2,
    )
    # two starts on two cores that did not slow each other: nothing else ran
    assert other_load(same, 2.0) == 0.0


class BurstyFakePlatform(FakePlatform):
    """Also starts ``n`` replicas when ``n`` requests come at once from zero (from threads):
    each takes 0.6 s x 1.2 when several start together."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.barrier: threading.Barrier | None = None
        self.starts = 0

    def predict(self, name: str, inputs: object = None) -> dict:
        if self.barrier is None or threading.current_thread() is threading.main_thread():
            return super().predict(name, inputs)
        self.barrier.wait(5)  # all of the burst's requests are in before any is answered
        with self.lock:
            if not self.warm or self.starts < self.barrier.parties:
                self.starts += 1
                self.deployed[name]["cold_starts"].append(
                    {"at": f"t{len(self.deployed[name]['cold_starts'])}", "seconds": 0.72}
                )
                self.warm = True
            self.answers.append(0.04)
        return {}

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        self.starts = 0


def test_the_probe_times_replicas_started_together() -> None:
    fake = BurstyFakePlatform()
    fake.barrier = threading.Barrier(3)
    costs = probe(
        fake,
        "/m",
        body={},
        warm=2,
        cold=2,
        gap=0.0,
        concurrent=3,
        bursts=2,
        monotonic=fake.monotonic,
        sleep=fake.sleep,
    )
    assert costs.concurrency == 3
    assert costs.concurrent_startups == (0.72,) * 6  # two bursts of three
    assert costs.startup_samples == (0.6, 0.6)
    # three together on two cores would take 1.5x on an idle node; 1.2x is what sharing with
    # 9 other runnable processes gives: (9 + 3) / (9 + 1)
    assert other_load(costs, 2.0) == pytest.approx(9.0)
    [spec_deployed] = fake.deployed
    assert fake.deleted == [spec_deployed]

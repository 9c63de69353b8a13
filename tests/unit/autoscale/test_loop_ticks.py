"""The autoscale loop tick by tick, between a fake gateway (the collector's source), the pure
policy and a fake actuator, on a fake clock: minutes of idleness pass in microseconds."""

from __future__ import annotations

import asyncio
from typing import Any

from modelplane.autoscale.loop import Autoscaler
from modelplane.spec import DeploymentSpec
from modelplane.testing.clock import FakeClock


class Gateway:
    def __init__(self) -> None:
        self.counts: dict[str, tuple[int, int, int]] = {}

    def demand(self, name: str) -> tuple[int, int, int] | None:
        return self.counts.get(name)


class Actuator:
    def __init__(self) -> None:
        self.live: dict[str, int] = {}
        self.converged: list[str] = []
        self.events: list[tuple[str, str, str]] = []

    def live_replicas(self, name: str) -> int:
        return self.live.get(name, 0)

    async def converge(self, name: str) -> None:
        self.converged.append(name)

    def record_event(self, name: str, kind: str, message: str) -> None:
        self.events.append((name, kind, message))


def spec(**scale: Any) -> DeploymentSpec:
    return DeploymentSpec.parse(
        {"name": "echo", "model": {"path": "/m"}, "mode": "serverless", "scale": scale}
    )


def rig() -> tuple[Autoscaler, Gateway, Actuator, FakeClock]:
    gateway, actuator, clock = Gateway(), Actuator(), FakeClock()
    return Autoscaler(gateway, actuator, clock), gateway, actuator, clock


async def settle() -> None:
    await asyncio.sleep(0)  # let the converge task the tick created run once


async def test_a_dedicated_deployment_wants_its_replicas_whatever_the_traffic() -> None:
    scaler, gateway, actuator, clock = rig()
    dedicated = DeploymentSpec.parse(
        {"name": "d", "model": {"path": "/m"}, "mode": "dedicated", "scale": {"replicas": 3}}
    )
    gateway.counts["d"] = (50, 50, 100)
    assert scaler.desired(dedicated, clock.now()) == 3
    assert scaler.status("d") == {} and actuator.events == []


async def test_a_queued_request_at_zero_scales_up_and_asks_the_actuator() -> None:
    scaler, gateway, actuator, clock = rig()
    s = spec(min=0, max=4, target_concurrency=1)
    assert scaler.desired(s, clock.now()) == 0
    gateway.counts["echo"] = (0, 1, 1)
    assert scaler.tick(s, clock.now()) == 1
    await settle()
    assert actuator.converged == ["echo"]
    [(name, kind, message)] = actuator.events
    assert (name, kind) == ("echo", "scale") and message.startswith("0 -> 1 replicas: ")
    history = scaler.status("echo")["autoscaler"]["history"]
    assert history == [{"at": "2027-01-15T08:00:00+00:00", "replicas": 1}]  # the clock's wall


async def test_no_decision_without_the_gateways_counts() -> None:
    scaler, _, actuator, clock = rig()
    s = spec()
    assert scaler.tick(s, clock.now()) == 0
    await settle()
    assert actuator.converged == [] and actuator.events == []


async def test_a_quiet_deployment_goes_to_zero_only_after_its_idle_timeout() -> None:
    scaler, gateway, actuator, clock = rig()
    s = spec(min=0, max=4, target_concurrency=1, idle_timeout=60)
    gateway.counts["echo"] = (1, 0, 1)
    actuator.live["echo"] = 1
    assert scaler.tick(s, clock.now()) == 1
    gateway.counts["echo"] = (0, 0, 1)  # answered; nothing since
    clock.advance(59)
    assert scaler.tick(s, clock.now()) == 1
    clock.advance(2)
    assert scaler.tick(s, clock.now()) == 0
    await settle()
    assert actuator.events[-1][2].startswith("1 -> 0 replicas: ")
    assert actuator.converged[-1] == "echo"


async def test_requests_answered_between_ticks_still_count_as_traffic() -> None:
    scaler, gateway, actuator, clock = rig()
    s = spec(min=0, max=4, target_concurrency=1, idle_timeout=60)
    gateway.counts["echo"] = (1, 0, 1)
    actuator.live["echo"] = 1
    scaler.tick(s, clock.now())
    for count in range(2, 5):  # every 50 s one request comes and goes between two ticks
        clock.advance(50)
        gateway.counts["echo"] = (0, 0, count)
        assert scaler.tick(s, clock.now()) == 1
    clock.advance(59)
    assert scaler.tick(s, clock.now()) == 1  # 59 s after the last one: still not idle


async def test_a_spec_update_keeps_the_current_size_within_the_new_bounds() -> None:
    scaler, gateway, _, clock = rig()
    gateway.counts["echo"] = (0, 12, 12)
    scaler.tick(spec(min=0, max=4, target_concurrency=1), clock.now())
    assert scaler.desired(spec(min=0, max=4, target_concurrency=1), clock.now()) == 4
    assert scaler.desired(spec(min=0, max=2, target_concurrency=1), clock.now()) == 2
    assert scaler.desired(spec(min=3, max=8, target_concurrency=1), clock.now()) == 3


async def test_poke_decides_at_once_for_a_known_deployment_only() -> None:
    scaler, gateway, actuator, clock = rig()
    gateway.counts["echo"] = (0, 1, 1)
    scaler.poke("echo")  # not seen by the reconciler yet: nothing to decide on
    assert actuator.events == []
    s = spec(min=0, max=4, target_concurrency=1)
    scaler.desired(s, clock.now())
    scaler.poke("echo")
    await settle()
    assert actuator.converged == ["echo"] and actuator.events[0][2].startswith("0 -> 1")


async def test_forget_drops_the_deployments_memory() -> None:
    scaler, gateway, _, clock = rig()
    gateway.counts["echo"] = (0, 1, 1)
    scaler.tick(spec(min=0, max=4, target_concurrency=1), clock.now())
    scaler.forget("echo")
    assert scaler.status("echo") == {}
    scaler.poke("echo")
    assert scaler.status("echo") == {}


async def test_no_converge_when_the_live_count_already_matches() -> None:
    scaler, gateway, actuator, clock = rig()
    s = spec(min=1, max=4, target_concurrency=4)
    actuator.live["echo"] = 1
    gateway.counts["echo"] = (2, 0, 5)
    assert scaler.tick(s, clock.now()) == 1
    await settle()
    assert actuator.converged == [] and actuator.events == []

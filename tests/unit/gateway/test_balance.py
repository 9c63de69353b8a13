from __future__ import annotations

from dataclasses import dataclass

from modelplane.gateway.balance import least_loaded


@dataclass
class R:
    name: str
    in_flight: int


def test_least_loaded_prefers_fewest_then_earliest() -> None:
    assert least_loaded([R("a", 3), R("b", 1), R("c", 1)]).name == "b"
    assert least_loaded([R("a", 0), R("b", 0)]).name == "a"
    assert least_loaded([R("a", 5)]).name == "a"

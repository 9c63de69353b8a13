"""The gateway's router: predict URLs to the data plane, the rest handed on, memory bounded."""

from __future__ import annotations

from typing import Any

from modelplane.gateway.http import Request
from modelplane.gateway.router import CACHED_URLS, Gateway


class FakeDataPlane:
    def __init__(self) -> None:
        self.submitted: list[str] = []

    def submit(self, deployment: str, request: Any, on_reply: Any) -> None:
        self.submitted.append(deployment)


def make_request(method: bytes, url: bytes) -> Request:
    req = Request()
    req.method = method
    req.url = url
    return req


def make_gateway() -> tuple[Gateway, FakeDataPlane, list[bytes]]:
    dataplane = FakeDataPlane()
    handed_on: list[bytes] = []
    gateway = Gateway(dataplane, lambda req, conn: handed_on.append(req.url))  # type: ignore[arg-type]
    return gateway, dataplane, handed_on


def test_predict_urls_go_to_the_data_plane_and_the_rest_is_handed_on() -> None:
    gateway, dataplane, handed_on = make_gateway()
    for _ in range(2):  # the second time from the cache
        gateway(make_request(b"POST", b"/api/v1/deployments/echo/predict"), None)  # type: ignore[arg-type]
        gateway(make_request(b"POST", b"/api/v1/deployments/echo/predict?x=1"), None)  # type: ignore[arg-type]
    gateway(make_request(b"GET", b"/api/v1/deployments/echo/predict"), None)  # type: ignore[arg-type]
    gateway(make_request(b"GET", b"/api/v1/deployments/echo"), None)  # type: ignore[arg-type]
    gateway(make_request(b"POST", b"/api/v1/deployments/a/b/predict"), None)  # type: ignore[arg-type]
    assert dataplane.submitted == ["echo"] * 4
    assert handed_on == [
        b"/api/v1/deployments/echo/predict",
        b"/api/v1/deployments/echo",
        b"/api/v1/deployments/a/b/predict",
    ]


def test_other_urls_are_not_remembered() -> None:
    # Every upload names a new object: a job each. The router kept each URL it saw, so the
    # platform grew by one URL per job (the soak's growth, with the watcher's memory).
    gateway, _, handed_on = make_gateway()
    for n in range(1000):
        url = f"/api/v1/buckets/in/objects/soak/{n}.json".encode()
        gateway(make_request(b"PUT", url), None)  # type: ignore[arg-type]
        gateway(make_request(b"GET", f"/api/v1/deployments/echo/jobs?n={n}".encode()), None)  # type: ignore[arg-type]
    assert len(handed_on) == 2000
    assert len(gateway._names) == 0


def test_predict_urls_with_endless_query_strings_stay_bounded() -> None:
    gateway, dataplane, _ = make_gateway()
    for n in range(CACHED_URLS * 3):
        url = f"/api/v1/deployments/echo/predict?n={n}".encode()
        gateway(make_request(b"POST", url), None)  # type: ignore[arg-type]
    assert len(dataplane.submitted) == CACHED_URLS * 3
    assert 0 < len(gateway._names) <= CACHED_URLS

"""The advisor's probe on this platform, for ``POST /api/v1/advise`` with a model folder.

:func:`modelplane.advisor.measure.probe` is synchronous and talks to a
:class:`~modelplane.advisor.measure.ProbeTarget`; here that target is the platform's own
deployment operations, as the caller (so a folder is checked by the same rules as deploying it
through the API, and the probe deployment counts against the caller's quota while it lives),
and the data plane's entry for predictions. The probe runs in a worker thread; every call it
makes is sent to the event loop and awaited there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import orjson

from modelplane.advisor.costs import Costs
from modelplane.advisor.measure import probe
from modelplane.core.deployments import Deployments
from modelplane.core.deps import Deps
from modelplane.errors import error_from_body
from modelplane.gateway.reply import PredictRequest
from modelplane.security import Principal
from modelplane.spec import DeploymentSpec, ModelRef, Resources

__all__ = ["PlatformTarget", "probe_folder"]

T = TypeVar("T")
_JSON = b"application/json"


class PlatformTarget:
    """A :class:`~modelplane.advisor.measure.ProbeTarget` over this platform's services, called
    from a thread other than the event loop's."""

    def __init__(
        self, deps: Deps, caller: Principal, loop: asyncio.AbstractEventLoop, timeout: float
    ) -> None:
        self.deps = deps
        self.caller = caller
        self.loop = loop
        self.timeout = timeout
        self.service = Deployments(deps)

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(self.timeout)

    def deploy(self, spec: DeploymentSpec) -> Any:
        return self._run(self.service.create(spec, self.caller))

    def get(self, name: str) -> dict[str, Any]:
        return self._run(self.service.get(name, self.caller, events=False))

    def predict(self, name: str, inputs: Any = None) -> Any:
        request = PredictRequest(_JSON, orjson.dumps(inputs), principal=self.caller)
        reply = self._run(self.deps.dataplane.predict(name, request))
        if reply.error is not None:
            raise reply.error
        if reply.status >= 400:
            raise error_from_body(reply.status, bytes(reply.body))
        return reply.body

    def delete(self, name: str) -> None:
        self._run(self.service.delete(name, self.caller))

    def service_times(self, name: str) -> list[float]:
        async def read() -> list[float]:
            return self.deps.dataplane.service_times(name)

        return self._run(read())


async def probe_folder(
    deps: Deps,
    caller: Principal,
    path: str,
    *,
    sample: Any | None,
    resources: Resources | None,
    model: ModelRef | None = None,
    cold: int = 2,
    warm: int = 10,
    timeout: float = 120.0,
) -> Costs:
    """Measure the model in ``path`` on this platform: deploy it serverless at zero as the
    caller, time ``cold`` starts from zero and ``warm`` predictions, delete it."""
    target = PlatformTarget(deps, caller, asyncio.get_running_loop(), timeout)
    return await asyncio.to_thread(
        probe,
        target,
        path,
        body=sample,
        resources=resources,
        cold=cold,
        warm=warm,
        zero_timeout=timeout,
        model=model,
    )

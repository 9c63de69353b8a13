"""What long-running parts ask back of the platform: batch runs, trainings, the history.

The batch runner sends inputs through the data plane, reads and writes storage sides and makes
the deployment a one-off run brings; a training needs a deployment's interpreter, folder and
environment; the traffic history samples every deployment's counts. Each is a callback the
platform hands over at start-up, answered here from the platform's own parts.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from modelplane.controlplane.batches import side_of
from modelplane.controlplane.bootstrap import ADMIN
from modelplane.controlplane.runtime import DeploymentRuntime, DesiredFn
from modelplane.core.deployments import Deployments
from modelplane.core.deps import Deps
from modelplane.envs import EnvManager
from modelplane.errors import DeploymentNotFound
from modelplane.gateway.dataplane import DataPlane
from modelplane.gateway.reply import OnReply, PredictRequest
from modelplane.gateway.training import TrainTarget
from modelplane.history import Reading
from modelplane.jobs.batches import Ephemeral
from modelplane.metrics import Metrics
from modelplane.security import PLATFORM, Principal
from modelplane.settings import Settings
from modelplane.spec import DeploymentSpec
from modelplane.storage import BucketStore
from modelplane.storage.sides import Side
from modelplane.store.models import BatchRow


class BatchHooks:
    """The batch runner's ``submit``, ``sides`` and ``ephemeral`` callbacks."""

    def __init__(
        self,
        settings: Settings,
        dataplane: DataPlane,
        storage: BucketStore,
        deps: Callable[[], Deps],
    ) -> None:
        self.settings = settings
        self.dataplane = dataplane
        self.storage = storage
        self._deps = deps  # built after the batch runner, which it holds
        self._s3: Any = None

    def submit(self, name: str, content_type: bytes, body: bytes, on_reply: OnReply) -> bool:
        """A batch run's input, through the data plane's entry as the platform (the run was
        authorised when it was made). False: the deployment is gone."""
        if not self.dataplane.has(name):
            return False
        self.dataplane.submit(
            name, PredictRequest(content_type, body, principal=PLATFORM), on_reply
        )
        return True

    def sides(self, row: BatchRow) -> tuple[Side, Side]:
        """Where a run reads its inputs and writes its results."""
        return (
            side_of(row.input, self.storage, self._s3_client()),
            side_of(row.output, self.storage, self._s3_client()),
        )

    @property
    def ephemeral(self) -> Ephemeral:
        return Ephemeral(create=self.create, remove=self.remove)

    async def create(self, row: BatchRow) -> dict[str, Any]:
        """Make a one-off run's deployment, as the run's owner (unless it exists already)."""
        spec = DeploymentSpec.parse(row.options["spec"])
        deps = self._deps()
        if await asyncio.to_thread(deps.store.get_deployment, spec.name) is None:
            owner = Principal(row.owner, admin=bool(row.options.get("admin")))
            await Deployments(deps).create(spec, owner)
        return dict(row.options["spec"])

    async def remove(self, name: str) -> None:
        deps = self._deps()
        if await asyncio.to_thread(deps.store.get_deployment, name) is not None:
            await Deployments(deps).delete(name, Principal(ADMIN, admin=True))

    def _s3_client(self) -> Any:
        if self._s3 is None:
            import boto3

            s = self.settings
            self._s3 = boto3.client("s3", endpoint_url=s.s3_endpoint, region_name=s.s3_region)
        return self._s3


class TrainTargets:
    """How a deployment trains: its interpreter (its own environment), folder and env."""

    def __init__(
        self, deployments: Mapping[str, DeploymentRuntime], envs: EnvManager, cache_dir: Path
    ) -> None:
        self.deployments = deployments
        self.envs = envs
        self.cache_dir = cache_dir

    async def __call__(self, name: str) -> TrainTarget:
        dep = self.deployments.get(name)
        if dep is None:
            raise DeploymentNotFound(name)
        spec = dep.spec
        python = await self.envs.python_for(spec.model.path) or sys.executable
        env = {**os.environ, **spec.env, "MODELPLANE_CACHE_DIR": str(self.cache_dir / name)}
        if python != sys.executable:
            env.pop("PYTHONPATH", None)
        deepaas = ((dep.metadata or {}).get("extra") or {}).get("deepaas") or {}
        return TrainTarget(
            python,
            spec.model.path,
            spec.model.entrypoint,
            "deepaas",
            env,
            model_name=deepaas.get("name"),
        )


def readings(
    deployments: Mapping[str, DeploymentRuntime],
    desired: DesiredFn,
    now: float,
    metrics: Metrics,
    dataplane: DataPlane,
) -> dict[str, Reading]:
    """Every deployment's counters and replica counts at ``now``, for the traffic history."""
    out = {}
    for name, dep in deployments.items():
        requests, errors, rejected, buckets = metrics.requests.snapshot(name)
        out[name] = Reading(
            requests=requests,
            errors=errors,
            rejected=rejected,
            latency_buckets=buckets,
            ready=dep.count("ready"),
            desired=desired(dep, now),
            starting=dep.count("starting"),
            queued=dataplane.queued(name),
            in_flight=sum(dataplane.load(name).values()),
        )
    return out

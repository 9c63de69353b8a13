"""What long-running parts ask back of the platform: batch runs, trainings, the history.

The batch runner sends inputs through the data plane, reads and writes storage sides and makes
the deployment a one-off run brings; a training needs a deployment's interpreter, folder,
environment and sandbox, and a reservation in the node's book; the traffic history samples every
deployment's counts. Each is a callback the platform hands over at start-up, answered here from
the platform's own parts.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from modelplane.backends.local.process import interpreter, process_env
from modelplane.controlplane.batches import side_of
from modelplane.controlplane.bootstrap import ADMIN
from modelplane.controlplane.runtime import DeploymentRuntime, DesiredFn
from modelplane.core.deployments import Deployments
from modelplane.core.deps import Deps
from modelplane.envs import EnvManager
from modelplane.errors import DeploymentNotFound, InsufficientResources, QuotaExceeded
from modelplane.gateway.dataplane import DataPlane
from modelplane.gateway.reply import OnReply, PredictRequest
from modelplane.gateway.training import Hold, TrainTarget
from modelplane.history import Reading
from modelplane.jobs.batches import Ephemeral
from modelplane.metrics import Metrics
from modelplane.resources.placement import Grant, Refusal
from modelplane.resources.reservations import ReservationBook, per_replica
from modelplane.sandbox import SANDBOX_RESULTS, Sandbox
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
    """How a deployment trains: as its replicas start, with its interpreter (its own
    environment's), folder and env, inside its sandbox when replicas have one."""

    def __init__(
        self,
        deployments: Mapping[str, DeploymentRuntime],
        envs: EnvManager,
        cache_dir: Path,
        sandbox: Sandbox | None = None,
        base_env: Mapping[str, str] | None = None,
    ) -> None:
        self.deployments = deployments
        self.envs = envs
        self.cache_dir = cache_dir
        self.sandbox = sandbox
        # Unconfined replicas inherit the platform's environment; confined ones none of it.
        self.base_env = {} if sandbox else dict(os.environ if base_env is None else base_env)

    async def __call__(self, name: str) -> TrainTarget:
        dep = self.deployments.get(name)
        if dep is None:
            raise DeploymentNotFound(name)
        spec = dep.spec
        python, extra = await interpreter(self.envs, sys.executable, spec)
        cache = self.cache_dir / name
        cache.mkdir(parents=True, exist_ok=True)
        env = process_env(self.base_env, spec, {**extra, "MODELPLANE_CACHE_DIR": str(cache)})
        deepaas = ((dep.metadata or {}).get("extra") or {}).get("deepaas") or {}
        confine = None
        sandbox = self.sandbox
        if sandbox is not None:

            def confine(
                argv: list[str], env: dict[str, str], folder: Path
            ) -> tuple[list[str], dict[str, str]]:
                return sandbox.confine(spec, argv, env, python=python, training=folder)

        return TrainTarget(
            python,
            spec.model.path,
            spec.model.entrypoint,
            "deepaas",
            env,
            model_name=deepaas.get("name"),
            confine=confine,
            inside=SANDBOX_RESULTS,
            memory=spec.resources.memory,
        )


class TrainingHolds:
    """Trainings' reservations in the node's book, beside the replicas'."""

    def __init__(
        self, deployments: Mapping[str, DeploymentRuntime], book: Callable[[], ReservationBook]
    ) -> None:
        self.deployments = deployments
        self._book = book  # the reconciler's, made after the training book

    def take(self, key: str, deployment: str) -> Hold:
        dep = self.deployments.get(deployment)
        if dep is None:
            raise DeploymentNotFound(deployment)
        book = self._book()
        granted = book.reserve_training(key, deployment, dep.owner, per_replica(dep.spec))
        if isinstance(granted, Refusal):
            if granted.reason == "quota":
                raise QuotaExceeded(
                    f"a training of {deployment!r} would put {dep.owner!r} {granted.message}",
                    hint="a training holds what one replica of its deployment does; wait for "
                    "one to end, or ask an admin for a larger quota",
                    deployment=deployment,
                    **granted.to_dict(),
                )
            raise InsufficientResources(
                f"a training of {deployment!r} cannot start now: {granted.message}",
                hint="a training holds what one replica of its deployment does (its "
                "resources); try again once a training or a replica has ended",
                deployment=deployment,
                **granted.to_dict(),
            )
        return Hold(
            deployment,
            dep.owner,
            granted.cpu,
            granted.memory,
            granted.gpus,
            granted.env(book.inventory),
        )

    def restore(self, key: str, hold: Hold) -> None:
        grant = Grant(hold.cpu, hold.memory, hold.gpus)
        self._book().restore_training(key, hold.deployment, hold.owner, grant)

    def release(self, key: str) -> None:
        self._book().release(key)


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

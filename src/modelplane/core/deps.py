"""What the routes and the core operations need, passed to ``create_app`` explicitly (no
globals)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from modelplane.gateway.dataplane import DataPlane
from modelplane.history import History
from modelplane.jobs.group import GroupCommit
from modelplane.logs import LogBook
from modelplane.metrics import Metrics
from modelplane.resources.reservations import ReservationBook
from modelplane.security import TokenCache
from modelplane.settings import Settings
from modelplane.spec import DeploymentSpec
from modelplane.store import Store

if TYPE_CHECKING:
    from modelplane.envs import EnvManager
    from modelplane.jobs.batches import BatchRunner
    from modelplane.jobs.runner import JobRunner
    from modelplane.jobs.watcher import BucketWatcher
    from modelplane.storage import BucketStore
    from modelplane.store.batches import BatchStore
    from modelplane.store.jobs import Job, JobStore, NewJob


class RunningDeployment(Protocol):
    """A deployment as the reconciler last applied it."""

    @property
    def owner(self) -> str: ...

    @property
    def spec(self) -> DeploymentSpec: ...


class Runtime(Protocol):
    """What the operations need of the reconciler (``controlplane.reconciler.Reconciler``): the
    deployments it runs, the reservation book, and a way to make it act on a change now."""

    @property
    def deployments(self) -> Mapping[str, RunningDeployment]: ...

    @property
    def reservations(self) -> ReservationBook | None: ...

    async def sync(self) -> None:
        """Read the store's desired state now (the gateway knows a new deployment after it)."""

    def wake(self) -> None:
        """Converge soon, without waiting for the next tick."""

    def status(self, name: str) -> dict[str, Any]: ...


@dataclass
class Deps:
    settings: Settings
    store: Store
    dataplane: DataPlane
    reconciler: Runtime
    logs: LogBook
    metrics: Metrics
    tokens: TokenCache | None
    jobs: JobStore | None = None
    storage: BucketStore | None = None
    runner: JobRunner | None = None
    watcher: BucketWatcher | None = None
    envs: EnvManager | None = None
    history: History | None = None
    batches: BatchStore | None = None
    batch_runner: BatchRunner | None = None
    _enqueuer: GroupCommit[NewJob, tuple[Job, bool]] | None = field(default=None, repr=False)

    def enqueuer(self) -> GroupCommit[NewJob, tuple[Job, bool]]:
        """Enqueues of concurrent uploads, committed together (:mod:`modelplane.jobs.group`)."""
        if self._enqueuer is None:
            assert self.jobs is not None
            self._enqueuer = GroupCommit(self.jobs.enqueue_many)
        return self._enqueuer

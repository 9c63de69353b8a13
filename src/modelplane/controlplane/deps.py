"""What the REST routes need, passed to ``create_app`` explicitly (no globals)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelplane.controlplane.history import History
from modelplane.controlplane.reconciler import Reconciler
from modelplane.gateway.dataplane import DataPlane
from modelplane.logs import LogBook
from modelplane.metrics import Metrics
from modelplane.security import TokenCache
from modelplane.settings import Settings
from modelplane.store import Store

if TYPE_CHECKING:
    from modelplane.envs import EnvManager
    from modelplane.jobs.batches import BatchRunner
    from modelplane.jobs.runner import JobRunner
    from modelplane.jobs.watcher import BucketWatcher
    from modelplane.storage import BucketStore
    from modelplane.store.batches import BatchStore
    from modelplane.store.jobs import JobStore


@dataclass
class Deps:
    settings: Settings
    store: Store
    dataplane: DataPlane
    reconciler: Reconciler
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

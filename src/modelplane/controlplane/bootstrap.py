"""What the platform builds once, at start-up, from its settings and the machine.

Probing the world (the sandbox's host support, the node's or cluster's resources), reading the
admin token file and choosing backends happen here, once, so the parts built from the results
never probe anything themselves.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from modelplane.backends.base import RuntimeBackend
from modelplane.backends.local import LocalProcessBackend
from modelplane.envs import EnvManager
from modelplane.errors import SandboxUnavailable
from modelplane.logs import LogBook
from modelplane.resources.inventory import probe as probe_inventory
from modelplane.resources.quota import Quota
from modelplane.resources.reservations import ReservationBook
from modelplane.sandbox import Sandbox
from modelplane.sandbox import probe as probe_sandbox
from modelplane.security import hash_token, new_token
from modelplane.settings import Settings
from modelplane.storage import BucketStore, LocalBucketStore, S3BucketStore
from modelplane.store import Store
from modelplane.store.users import UserStore

ADMIN = "admin"

log = logging.getLogger("modelplane.storage")


def sandbox_for(s: Settings) -> tuple[Sandbox | None, str | None]:
    """The replicas' sandbox, or None with the reason they run unconfined (when allowed)."""
    if not s.sandbox:
        return None, "sandbox disabled (--no-sandbox): replicas run as the platform"
    forbidden = (str(s.data_dir.resolve()),)
    try:
        host = probe_sandbox(forbidden)
    except SandboxUnavailable as exc:
        if not s.local:
            raise
        return None, f"{exc.message}; replicas run unconfined (--local)"
    sandbox = Sandbox(
        host,
        socket=str(s.replica_socket),
        cache_root=s.cache_dir,
        forbidden=forbidden,
        owned_inside=(str((s.data_dir / "oscar").resolve()),),
        # model folders uploaded as zips: each upload's folder (deploys check its owner)
        shared_inside=(str((s.data_dir / "envs").resolve()), str(s.uploads_dir.resolve())),
    )
    return sandbox, None


async def make_backend(
    s: Settings, logs: LogBook, envs: EnvManager, sandbox: Sandbox | None
) -> RuntimeBackend:
    """The runtime backend the settings name: local processes, or a Ray cluster (joined here)."""
    if s.backend == "ray":
        from modelplane.backends.ray import RayApi, RayBackend

        api = RayApi(s.ray_address)
        await asyncio.to_thread(api.connect)  # joins the cluster once, here
        backend = RayBackend(api, logs.write)
        backend.start_monitor()  # health in /api/v1/health, warm templates kept on nodes
        return backend
    return LocalProcessBackend(log=logs.write, envs=envs, sandbox=sandbox)


def storage_for(s: Settings) -> BucketStore:
    if s.storage == "s3":
        return S3BucketStore(endpoint_url=s.s3_endpoint, region=s.s3_region)
    return LocalBucketStore(s.buckets_dir)


def cluster_totals(backend: object) -> dict[str, float] | None:
    """A cluster backend's declared totals (Ray: every node's), or None for this machine."""
    api = getattr(backend, "api", None)
    totals = getattr(api, "totals", None)
    return totals() if callable(totals) else None


def reservation_book(
    store: Store, settings: Settings, cluster: dict[str, float] | None = None
) -> ReservationBook:
    """The inventory, probed once here, and every user's quota. On a cluster the inventory is
    the cluster's totals: quotas hold across it, while the cluster places each replica."""
    if cluster is not None:
        inventory = probe_inventory(
            cpus=cluster.get("CPU", 0.0),
            memory=int(cluster.get("memory", 0)),
            gpus=tuple(range(int(cluster.get("GPU", 0)))),
            cpu_allocation_ratio=1.0,
        )
    else:
        inventory = probe_inventory(
            cpus=settings.cpus,
            memory=settings.node_memory,
            gpus=settings.gpus,
            cpu_allocation_ratio=settings.cpu_allocation_ratio,
        )
    quotas = {u.name: Quota.from_dict(u.quotas) for u in UserStore(store).list_users() if u.quotas}
    return ReservationBook(inventory, quotas)


def bootstrap_admin(store: Store, token_file: Path) -> str:
    """The admin account and its token, kept (0600) in the data directory across restarts."""
    store.ensure_user(ADMIN, admin=True)
    if token_file.exists():
        token = token_file.read_text().strip()
        if UserStore(store).principal_for(hash_token(token)) is not None:
            return token
    token = new_token()
    UserStore(store).create_token(ADMIN, hash_token(token), name="bootstrap")
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


async def sweep_dead_writes(storage: BucketStore, shared: bool, now: float) -> None:
    """Remove the temporary files of bucket writes cut short, before anything writes. Alone on
    the store no write of ours is in flight, so every one is dead; shared, another process's
    may be, so only those untouched for an hour go."""
    if not isinstance(storage, LocalBucketStore):
        return
    swept = await asyncio.to_thread(storage.sweep_temporary, 3600.0 if shared else 0.0, now)
    if swept:
        log.warning("removed %d temporary files of writes cut short", swept)

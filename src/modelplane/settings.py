"""Typed platform settings, read once at start-up (``modelplane up`` flags and environment)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_PORT = 8000
DEFAULT_HOST = "127.0.0.1"


def default_data_dir() -> Path:
    env = os.environ.get("MODELPLANE_DATA_DIR")
    return Path(env).expanduser() if env else Path.home() / ".modelplane"


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=default_data_dir)
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    local: bool = False
    """Single-user local mode: no token, loopback only."""
    store_url: str | None = None
    max_body: int = 16 * 1024 * 1024
    queue_limit: int = 1000
    queue_timeout: float = 60.0
    request_timeout: float = 120.0
    autoscale_interval: float = 0.2
    storage: str = "local"
    """Where buckets live: ``local`` (folders under the data directory) or ``s3``."""
    s3_endpoint: str | None = None
    s3_region: str | None = None
    job_lease: float = 60.0
    watch_interval: float = 2.0
    stable_window: float = 30.0
    """Seconds of load the autoscaler averages over before scaling down (panic: a tenth)."""
    keepalive_timeout: float = 5.0
    read_timeout: float = 30.0
    reconcile_interval: float = 0.5
    stop_grace: float = 5.0
    cpus: float | None = None
    """Reservable cores on this node; None: the cores probed times ``cpu_allocation_ratio``."""
    cpu_allocation_ratio: float = 8.0
    node_memory: int | None = None
    """Reservable bytes of memory; None: the machine's (``/proc/meminfo``)."""
    gpus: tuple[int, ...] | None = None
    """GPU device indices replicas may be given; None: ask ``nvidia-smi``."""
    rate_limit: float | None = None
    """Requests per second per token (predictions and REST); None: no limit."""
    sandbox: bool = True
    """Confine replicas with bubblewrap (see docs/security.md). Without bwrap the platform refuses
    to start, except with ``local`` (one user, their own models), where it warns and goes on."""
    max_queued_jobs: int | None = None
    """Jobs that may wait per deployment (see ``resources.quota.check_job_queue``)."""
    envs_cache: Path | None = None
    """The wheel cache of per-model environments; None: ``envs/.cache`` in the data directory."""

    history_interval: float = 2.0
    """Seconds between samples of each deployment's traffic kept for the dashboard's charts."""
    history_keep: int = 900
    """Samples kept per deployment (900 x 2 s: the last half hour)."""
    max_model_upload: int = 256 * 1024 * 1024
    """Bytes a model folder uploaded as a zip may unpack to."""

    replica_port: int = 0
    """TCP port for replicas on other nodes and relays from other platform processes (used
    with a shared store or a cluster backend); 0 picks a free one."""
    advertise_host: str | None = None
    """The address other nodes and platform processes reach this one at [default: --host, or
    127.0.0.1 when listening on every interface]."""
    backend: str = "local"
    """Where replicas run: ``local`` (processes on this machine) or ``ray`` (a Ray cluster)."""
    ray_address: str = "auto"
    """The Ray cluster to join: ``auto`` (the one ``ray start`` runs here) or ``HOST:PORT``."""
    lease_ttl: float = 5.0
    """Seconds the leader lease lasts unrenewed: how soon another process takes over."""

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def db_url(self) -> str:
        return self.store_url or f"sqlite:///{self.data_dir / 'modelplane.db'}"

    @property
    def token_file(self) -> Path:
        return self.data_dir / "admin.token"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def buckets_dir(self) -> Path:
        return self.data_dir / "buckets"

    @property
    def uploads_dir(self) -> Path:
        """Model folders uploaded as zips, one folder per upload."""
        return self.data_dir / "uploads"

    @property
    def envs_dir(self) -> Path:
        """Per-model Python environments and their wheel cache (see modelplane.envs)."""
        return self.data_dir / "envs"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def replica_socket(self) -> Path:
        """Where replicas dial in. Unix socket paths are limited to ~107 bytes."""
        path = self.data_dir / "run" / "replicas.sock"
        if len(str(path)) < 100:
            return path
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"modelplane-{digest}" / "replicas.sock"

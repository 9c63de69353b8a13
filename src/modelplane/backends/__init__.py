"""Runtime backends: where replicas run. Local processes by default; Ray for clusters."""

from __future__ import annotations

from modelplane.backends.base import ReplicaHandle, ReplicaLaunch, RuntimeBackend

__all__ = ["ReplicaHandle", "ReplicaLaunch", "RuntimeBackend"]

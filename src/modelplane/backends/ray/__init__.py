"""The Ray runtime backend: replicas as Ray actors on a cluster (``modelplane up --backend ray``).

Needs the ``ray`` extra (``pip install "modelplane[ray]"``); nothing here imports ray until the
platform connects.
"""

from __future__ import annotations

from modelplane.backends.ray.backend import RayApi, RayBackend

__all__ = ["RayApi", "RayBackend"]

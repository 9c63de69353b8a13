"""Replicas as child processes of the platform, on this machine."""

from __future__ import annotations

from modelplane.backends.local.process import LocalProcessBackend

__all__ = ["LocalProcessBackend"]

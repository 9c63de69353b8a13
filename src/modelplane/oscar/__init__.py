"""OSCAR compatibility: service definitions (FDL), their mapping onto deployments, and the
OSCAR REST API (``/system/…``, ``/run/…``, ``/job/…``, ``/health``) so the official
``oscar-python`` client works unmodified."""

from __future__ import annotations

from modelplane.oscar.fdl import OscarService, parse_fdl, service_from_dict

__all__ = ["OscarService", "parse_fdl", "service_from_dict"]

"""Deployment logs: what replicas print, and what the platform says about them."""

from __future__ import annotations

from modelplane.logs.book import LogBook

__all__ = ["LogBook"]

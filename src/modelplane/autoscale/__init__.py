"""Autoscaling for serverless deployments: windowed metrics and a pure scaling policy.

The loop that collects metrics from the gateway, calls :func:`decide` and asks the runtime
backend to act lives apart from these pure parts, so each is tested on its own.
"""

from __future__ import annotations

from modelplane.autoscale.policy import Decision, PolicyState, ScaleConfig, ScaleContext, decide
from modelplane.autoscale.tracker import Tracker
from modelplane.autoscale.window import ConcurrencyWindow

__all__ = [
    "ConcurrencyWindow",
    "Decision",
    "PolicyState",
    "ScaleConfig",
    "ScaleContext",
    "Tracker",
    "decide",
]

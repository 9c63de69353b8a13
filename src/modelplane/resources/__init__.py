"""Node resources: inventory (probed once at start), placement and quotas (pure), rate limits."""

from __future__ import annotations

from modelplane.resources.amounts import Shortage, Usage
from modelplane.resources.inventory import Gpu, Inventory
from modelplane.resources.placement import Grant, Refusal, place
from modelplane.resources.quota import Quota

__all__ = ["Gpu", "Grant", "Inventory", "Quota", "Refusal", "Shortage", "Usage", "place"]

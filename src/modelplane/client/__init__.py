"""The Python SDK over the REST API. The CLI is a thin layer over it."""

from __future__ import annotations

from modelplane.client.api import Client, Prediction, default_token, default_url

__all__ = ["Client", "Prediction", "default_token", "default_url"]

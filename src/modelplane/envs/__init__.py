"""Per-model Python environments: a model folder with requirements runs in a virtualenv of its own.

- :mod:`.source` — what a folder asks for (``requirements.txt``, or a pip-installable package)
  and the key of its environment: a hash of those files and the Python version. Pure.
- :mod:`.build` — building one environment with ``uv`` (or pip), and the worker path that lets
  modelplane's replica code run there without the platform's own dependencies.
- :mod:`.manager` — the cache of environments on disk: one build per key, shared by every
  deployment that asks for it; states for ``status``; listing and pruning.
"""

from __future__ import annotations

from modelplane.envs.build import EnvBuilder, EnvBuildFailed
from modelplane.envs.manager import EnvManager, EnvState
from modelplane.envs.source import EnvSource, find_source

__all__ = ["EnvBuildFailed", "EnvBuilder", "EnvManager", "EnvSource", "EnvState", "find_source"]

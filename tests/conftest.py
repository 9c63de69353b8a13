from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
FIXTURE_MODELS = Path(__file__).resolve().parent / "fixtures" / "models"


@pytest.fixture
def examples() -> Path:
    return EXAMPLES


@pytest.fixture
def fixture_models() -> Path:
    return FIXTURE_MODELS


# A real PostgreSQL server (Debian's package, initdb into a temp folder), for every suite.
from tests.pgserver import postgres_server, postgres_url  # noqa: E402,F401
from tests.raycluster import ray_cluster  # noqa: E402,F401

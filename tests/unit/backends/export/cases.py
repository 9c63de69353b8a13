"""The specs every export test renders: one per kind of deployment the issue names.

Model paths are kept relative (``examples/echo``) and the model folder's facts given explicitly,
so rendering stays pure and the golden files do not depend on where the checkout lives.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modelplane.backends.export import ExportOptions, ModelFacts
from modelplane.spec import DeploymentSpec

ROOT = Path(__file__).resolve().parents[4]


@dataclass(frozen=True)
class Case:
    spec: DeploymentSpec
    facts: ModelFacts

    def options(self, image: str | None = "registry.example/models/{name}:1.0") -> ExportOptions:
        ref = image.format(name=self.spec.name) if image else None
        return ExportOptions(image=ref, facts=self.facts)


CASES: dict[str, Case] = {
    # examples/echo/deployment.yaml as it is: dedicated, 2 replicas
    "dedicated": Case(
        DeploymentSpec.parse(
            {
                "name": "echo",
                "model": {"path": "examples/echo"},
                "mode": "dedicated",
                "scale": {"replicas": 2},
                "resources": {"cpu": 0.5, "memory": "256Mi"},
            }
        ),
        ModelFacts(loader="python"),
    ),
    "serverless": Case(
        DeploymentSpec.parse(
            {
                "name": "echo-serverless",
                "model": {"path": "examples/echo"},
                "mode": "serverless",
                "scale": {"min": 0, "max": 3, "target_concurrency": 2, "idle_timeout": 120},
                "resources": {"cpu": 0.25, "memory": "128Mi"},
                "description": "Echo, scaled from zero",
            }
        ),
        ModelFacts(loader="python"),
    ),
    "gpu": Case(
        DeploymentSpec.parse(
            {
                "name": "digits-gpu",
                "model": {"path": "examples/digits", "entrypoint": "digits_model:DigitsModel"},
                "mode": "dedicated",
                "scale": {"replicas": 3},
                "resources": {"cpu": 2, "memory": "2Gi", "gpu": 1},
                "env": {"OMP_NUM_THREADS": "2", "GREETING": 'say "hi" ${USER}'},
            }
        ),
        ModelFacts(loader="python", requirements=True),
    ),
    "buckets": Case(
        DeploymentSpec.parse(
            {
                "name": "digits-jobs",
                "model": {"path": "examples/digits"},
                "mode": "serverless",
                "scale": {"min": 1, "max": 4},
                "resources": {"cpu": 1, "memory": "1Gi"},
                "input": "digits-in",
                "output": "digits-out",
            }
        ),
        ModelFacts(loader="python", requirements=True),
    ),
    "deepaas": Case(
        DeploymentSpec.parse(
            {
                "name": "deepaas-files",
                "model": {"path": "tests/fixtures/models/deepaas_files", "loader": "deepaas"},
                "mode": "serverless",
                "scale": {"min": 0, "max": 2, "target_concurrency": 1.5},
            }
        ),
        ModelFacts(loader="deepaas"),
    ),
}

"""``POST /api/v1/advise`` on a real platform, from a deployment's recorded history, and
``modelplane advise --model`` with its probe on a throwaway platform."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from modelplane.cli.main import app
from modelplane.spec import DeploymentSpec
from tests.integration.conftest import Harness

pytestmark = pytest.mark.integration

TRAFFIC = {"requests_per_hour": 60, "pattern": "spaced", "latency_slo_ms": 100}


async def test_advice_from_a_deployments_recorded_history(harness: Harness, examples: Path) -> None:
    await harness.deploy(
        "echo",
        examples / "echo",
        mode="serverless",
        scale={"min": 0, "max": 2, "target_concurrency": 1, "idle_timeout": 60},
    )
    for _ in range(5):
        r = await harness.predict("echo", {"inputs": [1, 2]})
        assert r.status_code == 200
    r = await harness.http.post("/api/v1/advise", json={"deployment": "echo", **TRAFFIC})
    assert r.status_code == 200, r.text
    advice = r.json()
    assert advice["costs"]["source"] == "history"
    assert advice["costs"]["service_samples"] >= 5
    # the echo model answers in well under 50 ms, as its recorded answers say
    assert 0 < advice["costs"]["service_seconds_p50"] < 0.05
    assert advice["recommendation"]["option"] == "serverless"
    options = {o["option"]: o for o in advice["options"]}
    assert set(options) == {"serverless", "dedicated", "async", "export"}
    # the snippet keeps the deployment's own model reference, ready for `modelplane deploy`
    spec = DeploymentSpec.parse(yaml.safe_load(options["dedicated"]["snippet"]))
    assert spec.model.path == str(examples / "echo")


async def test_advice_needs_a_history_first(harness: Harness, examples: Path) -> None:
    await harness.deploy("quiet", examples / "echo", mode="serverless")
    r = await harness.http.post("/api/v1/advise", json={"deployment": "quiet", **TRAFFIC})
    assert r.status_code == 409
    assert "modelplane advise --model" in r.json()["hint"]


async def test_advice_is_for_the_callers_own_deployments_only(harness: Harness) -> None:
    r = await harness.http.post("/api/v1/advise", json={"deployment": "nope", **TRAFFIC})
    assert r.status_code == 404
    async with httpx.AsyncClient(base_url=harness.platform.url) as anonymous:
        r = await anonymous.post("/api/v1/advise", json={"deployment": "nope", **TRAFFIC})
    assert r.status_code == 401


async def test_bad_bodies_name_the_field(harness: Harness) -> None:
    costs = {"load_seconds": 0.1, "service_seconds": [0.01]}
    r = await harness.http.post("/api/v1/advise", json={"costs": costs, "requests_per_hour": -1})
    assert r.status_code == 422
    assert r.json()["details"]["problems"][0]["field"] == "requests_per_hour"
    r = await harness.http.post("/api/v1/advise", json={"costs": costs})
    assert r.status_code == 422
    assert "how much traffic" in r.json()["message"]


async def test_the_fuzzers_costly_advice_is_quick_and_a_costlier_one_is_a_422(
    harness: Harness,
) -> None:
    """schemathesis's find (issue #12): hour-long service times at 0.5 requests an hour took
    ~11 s of CPU; a month-long busy trace of them is refused at the work limit."""
    import time

    costs = {"load_seconds": 5e-324, "start_overhead_seconds": 0.333, "service_seconds": [3600]}
    t0 = time.process_time()  # the platform runs in this process (advice on a worker thread)
    r = await harness.http.post("/api/v1/advise", json={"costs": costs, "requests_per_hour": 0.5})
    assert r.status_code == 200, r.text
    assert time.process_time() - t0 < 2.0
    trace = [i * 40.0 for i in range(50_000)]
    r = await harness.http.post("/api/v1/advise", json={"costs": costs, "trace": trace})
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "work_limit"
    assert "700,000 units of simulated work" in r.json()["message"]


async def test_given_costs_answer_without_any_deployment(harness: Harness) -> None:
    body = {
        "costs": {"load_seconds": 0.5, "service_seconds": [0.05]},
        "dataset_size": 5000,
        "name": "digits",
    }
    r = await harness.http.post("/api/v1/advise", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["recommendation"]["option"] == "dedicated-oneoff"


async def test_a_model_folder_is_probed_on_the_platform(harness: Harness, examples: Path) -> None:
    body = {"model": {"path": str(examples / "echo")}, "sample": {"inputs": [1]}, **TRAFFIC}
    r = await harness.http.post("/api/v1/advise", json=body)
    assert r.status_code == 200, r.text
    advice = r.json()
    costs = advice["costs"]
    assert costs["source"] == "probe"
    # two starts from zero and ten warm predictions, each split into service and hop
    assert len(costs["cold_start_samples_seconds"]) == 2
    assert costs["service_samples"] == 10 and len(costs["hop_samples_seconds"]) == 10
    assert 0 < costs["service_seconds_p50"] < 0.05
    assert 0 < costs["cold_start_seconds"] < 30
    # the snippet deploys the folder that was probed
    options = {o["option"]: o for o in advice["options"]}
    spec = DeploymentSpec.parse(yaml.safe_load(options["serverless"]["snippet"]))
    assert spec.model.path == str(examples / "echo") and spec.name == "echo"
    # the probe's deployment is gone
    r = await harness.http.get("/api/v1/deployments")
    assert [d["name"] for d in r.json()] == []


async def test_a_folder_the_platform_cannot_deploy_is_refused_before_any_probe(
    harness: Harness, tmp_path: Path
) -> None:
    r = await harness.http.post(
        "/api/v1/advise", json={"model": {"path": str(tmp_path / "missing")}, **TRAFFIC}
    )
    assert r.status_code == 422, r.text
    assert r.json()["details"]["field"] == "model.path"
    r = await harness.http.post(
        "/api/v1/advise",
        json={"model": {"path": str(tmp_path)}, "deployment": "echo", **TRAFFIC},
    )
    assert r.status_code == 422
    assert "exactly one of deployment" in r.json()["message"]


@pytest.mark.slow
def test_cli_measures_the_model_with_a_probe_then_advises(tmp_path: Path) -> None:
    model = Path(__file__).resolve().parents[3] / "bench" / "models" / "sleepy50"
    plot = tmp_path / "day.svg"
    result = CliRunner().invoke(
        app,
        [
            "advise",
            "--model",
            str(model),
            "--requests-per-hour",
            "30",
            "--pattern",
            "spaced",
            "--latency-slo-ms",
            "500",
            "--json",
            "--plot",
            str(plot),
        ],
    )
    assert result.exit_code == 0, result.output
    advice = json.loads(result.output)
    costs = advice["costs"]
    assert costs["source"] == "probe"
    # sleepy50's predict blocks 50 ms: the warm requests' round trips say so
    assert 0.05 <= costs["service_seconds_p50"] < 0.2
    assert costs["service_samples"] == 10
    assert plot.read_text().lstrip().startswith("<?xml")
    assert advice["recommendation"]["rule"] == "spaced"


def test_cli_says_what_to_give() -> None:
    result = CliRunner().invoke(app, ["advise", "--requests-per-hour", "10"])
    assert result.exit_code == 1
    assert "--model FOLDER" in result.output

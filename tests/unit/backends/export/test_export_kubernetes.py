"""Kubernetes, Knative and KServe documents, validated offline against real schemas:

- Deployment, Service and HorizontalPodAutoscaler against the official Kubernetes OpenAPI schemas
  shipped by ``kubernetes-validate`` (strict: unknown fields fail);
- every container (also Knative's and KServe's) against the same schemas'
  ``io.k8s.api.core.v1.Container``;
- the Knative Service against a hand-transcribed subset of its API (schemas/, source noted);
- the InferenceService against the official ``kserve`` package's generated models, walked
  strictly (every key must be a field of the model, every value of the field's type).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import schema_contents
from referencing import Registry, Resource
from tests.unit.backends.export.cases import CASES

from modelplane.backends.export import render

K8S_VERSION = "1.31.0"
SCHEMAS = Path(__file__).parent / "schemas"


def docs(case: str, target: str, name: str) -> list[dict[str, Any]]:
    c = CASES[case]
    text = render(c.spec, target, c.options()).files[name]
    return [d for d in yaml.safe_load_all(text) if d is not None]


def container_validator() -> jsonschema.Draft202012Validator:
    defs = schema_contents(
        f"kubernetes-json-schema/v{_schema_version()}-local-strict/_definitions.json", K8S_VERSION
    )
    registry: Registry = Resource.from_contents(defs) @ Registry()
    ref = {"$ref": f"{defs['$id']}#/$defs/io.k8s.api.core.v1.Container"}
    return jsonschema.Draft202012Validator(ref, registry=registry)


def _schema_version() -> str:
    wanted = kubernetes_validate.utils.major_minor(K8S_VERSION)
    return [
        v
        for v in kubernetes_validate.utils.all_versions()
        if kubernetes_validate.utils.major_minor(v) <= wanted
    ][-1]


# -- plain Kubernetes -----------------------------------------------------------------------------
@pytest.mark.parametrize("case", list(CASES))
def test_every_document_validates_against_the_official_schemas(case: str) -> None:
    found = docs(case, "kubernetes", "kubernetes.yaml")
    for doc in found:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    kinds = [d["kind"] for d in found]
    serverless = CASES[case].spec.mode == "serverless"
    assert kinds == ["Deployment", "Service"] + (["HorizontalPodAutoscaler"] if serverless else [])


def test_the_validator_is_strict_about_unknown_fields() -> None:
    deployment = docs("dedicated", "kubernetes", "kubernetes.yaml")[0]
    deployment["spec"]["template"]["spec"]["containers"][0]["resource"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_dedicated_is_fixed_replicas_with_requests_limits_and_probes() -> None:
    deployment, service = docs("dedicated", "kubernetes", "kubernetes.yaml")
    assert deployment["spec"]["replicas"] == 2
    (ctr,) = deployment["spec"]["template"]["spec"]["containers"]
    assert ctr["resources"] == {
        "requests": {"cpu": "500m", "memory": "256Mi"},
        "limits": {"cpu": "500m", "memory": "256Mi"},
    }
    assert ctr["image"] == "registry.example/models/echo:1.0"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert ctr[probe]["httpGet"] == {"path": "/health", "port": "http"}
    assert ctr["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert deployment["spec"]["selector"]["matchLabels"].items() <= (
        deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_serverless_gets_an_hpa_between_min_and_max_and_says_it_cannot_reach_zero() -> None:
    c = CASES["serverless"]
    bundle = render(c.spec, "kubernetes", c.options())
    hpa = next(
        d
        for d in yaml.safe_load_all(bundle.files["kubernetes.yaml"])
        if d["kind"] == "HorizontalPodAutoscaler"
    )
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 3)
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "echo-serverless",
    }
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 120
    assert any("cannot scale to zero" in w for w in bundle.warnings)
    assert any("target_concurrency 2" in w for w in bundle.warnings)


def test_gpus_are_nvidia_extended_resources_in_limits() -> None:
    deployment = docs("gpu", "kubernetes", "kubernetes.yaml")[0]
    (ctr,) = deployment["spec"]["template"]["spec"]["containers"]
    assert ctr["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "nvidia.com/gpu" not in ctr["resources"]["requests"]
    assert (
        ctr["resources"]["limits"]["cpu"] == "2" and ctr["resources"]["limits"]["memory"] == "2Gi"
    )
    assert {e["name"]: e["value"] for e in ctr["env"]} == CASES["gpu"].spec.env


# -- Knative --------------------------------------------------------------------------------------
def knative_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / "knative-service-v1.subset.json").read_text())
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("case", list(CASES))
def test_knative_services_validate(case: str) -> None:
    (service,) = docs(case, "knative", "knative.yaml")
    knative_validator().validate(service)
    for ctr in service["spec"]["template"]["spec"]["containers"]:
        container_validator().validate(ctr)


def test_knative_serverless_scales_to_zero_on_concurrency_and_keeps_the_last_pod() -> None:
    (service,) = docs("serverless", "knative", "knative.yaml")
    notes = service["spec"]["template"]["metadata"]["annotations"]
    assert notes == {
        "autoscaling.knative.dev/min-scale": "0",
        "autoscaling.knative.dev/max-scale": "3",
        "autoscaling.knative.dev/metric": "concurrency",
        "autoscaling.knative.dev/target": "2",
        "autoscaling.knative.dev/scale-to-zero-pod-retention-period": "120s",
    }
    assert service["spec"]["template"]["spec"]["containerConcurrency"] == 0


def test_knative_dedicated_pins_min_and_max_to_the_replicas() -> None:
    (service,) = docs("gpu", "knative", "knative.yaml")
    notes = service["spec"]["template"]["metadata"]["annotations"]
    assert (
        notes["autoscaling.knative.dev/min-scale"]
        == notes["autoscaling.knative.dev/max-scale"]
        == "3"
    )


def test_the_knative_schema_rejects_what_knative_rejects() -> None:
    (service,) = docs("serverless", "knative", "knative.yaml")
    bad = json.loads(json.dumps(service))
    bad["spec"]["template"]["spec"]["containers"][0]["ports"][0]["name"] = "http"
    with pytest.raises(jsonschema.ValidationError):
        knative_validator().validate(bad)
    bad = json.loads(json.dumps(service))
    bad["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/min-scale"] = "x"
    with pytest.raises(jsonschema.ValidationError):
        knative_validator().validate(bad)


# -- KServe ---------------------------------------------------------------------------------------
def _model_class(name: str) -> Any:
    import kserve.models as kserve_models
    import kubernetes.client.models as k8s_models

    for module in (kserve_models, k8s_models):
        if hasattr(module, name):
            return getattr(module, name)
    raise AssertionError(f"no model class {name}")


def check_against_model(value: Any, type_name: str, where: str) -> None:
    """``value`` (a decoded document) fits the generated model type ``type_name`` exactly."""
    # kserve writes list[X] and dict(str, X), the kubernetes client List[X] and Dict[str, X]
    if m := re.fullmatch(r"[lL]ist\[(.+)\]", type_name):
        assert isinstance(value, list), where
        for i, item in enumerate(value):
            check_against_model(item, m.group(1), f"{where}[{i}]")
    elif m := re.fullmatch(r"dict\(str, (.+)\)|Dict\[str, (.+)\]", type_name):
        assert isinstance(value, dict), where
        for key, item in value.items():
            check_against_model(item, m.group(1) or m.group(2), f"{where}.{key}")
    elif type_name in ("str", "int", "bool", "float", "object", "ResourceQuantity"):
        kinds: dict[str, tuple[type, ...]] = {
            "str": (str,),
            "int": (int,),
            "bool": (bool,),
            "float": (float, int),
            "object": (object,),
            "ResourceQuantity": (str, int, float),
        }
        assert isinstance(value, kinds[type_name]), f"{where}: {value!r} is not {type_name}"
        if type_name == "int":
            assert not isinstance(value, bool), where
    else:
        cls = _model_class(type_name)
        assert isinstance(value, dict), f"{where}: not an object"
        by_json = {json_key: attr for attr, json_key in cls.attribute_map.items()}
        for key, item in value.items():
            assert key in by_json, f"{where}: {type_name} has no field {key!r}"
            check_against_model(item, cls.openapi_types[by_json[key]], f"{where}.{key}")


@pytest.mark.parametrize("case", list(CASES))
def test_inference_services_fit_the_official_kserve_models(case: str) -> None:
    (isvc,) = docs(case, "kserve", "kserve.yaml")
    assert (isvc["apiVersion"], isvc["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    check_against_model(isvc["spec"], "V1beta1InferenceServiceSpec", "spec")
    check_against_model(isvc["metadata"], "V1ObjectMeta", "metadata")
    for ctr in isvc["spec"]["predictor"]["containers"]:
        container_validator().validate(ctr)


def test_the_kserve_walk_catches_a_misspelt_field() -> None:
    (isvc,) = docs("serverless", "kserve", "kserve.yaml")
    isvc["spec"]["predictor"]["minReplica"] = 0
    with pytest.raises(AssertionError, match="minReplica"):
        check_against_model(isvc["spec"], "V1beta1InferenceServiceSpec", "spec")


def test_kserve_scaling_follows_the_mode() -> None:
    (serverless,) = docs("deepaas", "kserve", "kserve.yaml")
    p = serverless["spec"]["predictor"]
    assert (p["minReplicas"], p["maxReplicas"]) == (0, 2)
    # KServe documents concurrency, rps, cpu and memory; the target is an integer.
    assert (p["scaleMetric"], p["scaleTarget"]) == ("concurrency", 2)
    assert p["containers"][0]["name"] == "kserve-container"
    (dedicated,) = docs("gpu", "kserve", "kserve.yaml")
    p = dedicated["spec"]["predictor"]
    assert (p["minReplicas"], p["maxReplicas"]) == (3, 3) and "scaleMetric" not in p
    assert p["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_kserve_says_it_has_no_bucket_trigger() -> None:
    c = CASES["buckets"]
    warnings = render(c.spec, "kserve", c.options()).warnings
    assert any("digits-in -> digits-out" in w and "KServe" in w for w in warnings)

"""The API survives fuzzing: schemathesis against the platform's own OpenAPI document.

A real platform (``modelplane up``, token auth, sandbox on) and the real schemathesis CLI, with
a bounded number of examples per operation so CI spends well under two minutes here. Checks:
no server error (5xx other than the documented 503s), every response matching the document, and
the document stating the constraints the API enforces: schemathesis reports an operation whose
generated (valid by the document) requests were all refused as "mostly rejected generated
data", and every such operation fails the test unless :data:`INHERENTLY_REJECTED` names it with
the reason.

The document is the one the platform serves, with one fixture applied (:func:`with_fixtures`):
a model folder is a path on the platform's machine, which no document can enumerate, so the
fuzzed copy says which folder exists here (``examples/echo``). The token-revoking and
user-removing operations are left out: the fuzzer would revoke the very token it runs with (or
remove its admin) and spend the rest of the run on 401s; their own tests live in
tests/integration/platform/test_accounts.py. So is starting a DEEPaaS training: each is a
process of its own (seconds each); tests/integration/platform/test_training.py drives them.

The protocol fronts the gateway answers itself (Open Inference Protocol ``/v2``, DEEPaaS
``/deepaas/{deployment}``) are in the document too; each is fuzzed against a model deployed for
the run (:func:`with_front_fixtures` says which, and what that model takes).
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_cli import CLI, free_port, wait_http
from tests.polling import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.fuzz]
EXAMPLES_PER_OPERATION = 10
ECHO = Path(__file__).resolve().parents[2] / "examples" / "echo"
SCRIPT = 'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"\n'
"""An OSCAR service's script is code to run: the fixture gives one that works."""
DIGITS = Path(__file__).resolve().parents[2] / "examples" / "digits"
DEEPAAS = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "models" / "deepaas_files"
FRONT_DEPLOYMENTS = [
    # the Open Inference Protocol front's model: it declares tensors (examples/digits)
    {"name": "fuzz-oip", "model": {"path": str(DIGITS)}, "mode": "dedicated"},
    # the DEEPaaS front's: a DEEPaaS v2 module with file, choice and integer arguments
    {
        "name": "fuzz-deepaas",
        "model": {"path": str(DEEPAAS), "loader": "deepaas", "entrypoint": None},
        "mode": "dedicated",
    },
]
JOBS_DEPLOYMENT = {
    "name": "fuzz-jobs",
    "model": {"path": str(ECHO)},
    "input": "fuzz-jobs-in",
    "output": "fuzz-jobs-out",
}

# A prediction that finds no replica in time (the fuzzer may have set the owner's quota to a
# few bytes, or removed the deployment meanwhile) is a 503 with a message and Retry-After: a
# documented answer, not a server error.
CONFIG = """
[[operations]]
include-path-regex = "(/predict$|^/run/|/infer$|^/v2/models/|^/deepaas/)"
[operations.checks.not_a_server_error]
expected-statuses = ["2XX", "3XX", "4XX", "503"]
"""

INHERENTLY_REJECTED: dict[str, str] = {}
"""Operations whose generated requests cannot be accepted whatever the document says, and why.
Model uploads, batch runs and replaced specs were here; the fixtures now give what they need (a
zip strategy, the buckets a batch run reads and writes, a replaced spec the path's name and what
fits the node) and fuzz_hooks.py keeps a spec's rules between fields that OpenAPI cannot state."""
HOOKS = Path(__file__).resolve().parent / "fuzz_hooks.py"
PUT_DEPLOYMENT = {"name": "fuzz-put", "model": {"path": str(ECHO)}}
"""The deployment whose spec the fuzzer replaces: the body's name must be the path's, a rule
between two parameters that OpenAPI cannot state, so both are pinned to this one."""
BATCH_OUTPUT = "fuzz-batch-out"


def with_fixtures(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with every model folder reference pinned to the one folder that exists here (none
    for advice, whose probe of a model is slow), and
    every OSCAR service's script to one that runs, and job uploads to a deployment that takes
    them."""
    for name, schema in doc["components"]["schemas"].items():
        if name.endswith("ModelRef"):
            props = schema["properties"]
            props["path"] = {"type": "string", "enum": [str(ECHO)]}
            props["entrypoint"] = {"type": "null"}  # the folder's own modelplane.yaml names it
            props["loader"] = {"type": "string", "enum": ["auto", "python"]}
    for path in ("/system/services",):
        for method in ("post", "put"):
            body = doc["paths"][path][method]["requestBody"]["content"]["application/json"]
            props = body["schema"]["properties"]
            props["script"] = {"type": "string", "enum": [SCRIPT]}
            # what fits this machine (a replica bigger than the node is refused, rightly)
            props["enable_gpu"] = {"type": "boolean", "enum": [False]}
            props["cpu"] = {"type": "string", "enum": ["0.5", "1"]}
            props["memory"] = {"type": "string", "enum": ["64Mi", "256Mi"]}
    # Advice from a model folder probes it (a deployment, cold starts, timed predictions: seconds
    # a request); tests/integration/platform covers it. Here advice comes from costs or history.
    advise = doc["components"]["schemas"]["AdviseRequest"]["properties"]
    advise["model"] = {"type": "null"}
    advise["sample"] = {"type": "null"}
    # A replaced spec names the deployment of its path: the one made for it before the run.
    put = doc["paths"]["/api/v1/deployments/{name}"]["put"]
    put["parameters"][0]["schema"] = {"type": "string", "enum": [PUT_DEPLOYMENT["name"]]}
    replaced = copy.deepcopy(doc["components"]["schemas"]["DeploymentSpec"])
    replaced["properties"]["name"] = {"type": "string", "enum": [PUT_DEPLOYMENT["name"]]}
    # ... asking for what fits this machine, as the OSCAR services above (a replica bigger than
    # the node is refused, rightly; the node's size is no part of the document)
    schemas = doc["components"]["schemas"]
    resources = copy.deepcopy(schemas[ref_name(replaced["properties"]["resources"])])
    resources["properties"]["cpu"] = {"type": "number", "enum": [0.25, 0.5, 1]}
    resources["properties"]["memory"] = {"enum": [64 * 2**20, "128Mi", "256Mi"]}
    resources["properties"]["gpu"] = {"type": "integer", "enum": [0]}
    scale = copy.deepcopy(schemas[ref_name(replaced["properties"]["scale"])])
    for count in ("replicas", "min", "max"):
        scale["properties"][count]["maximum"] = 2
    schemas["ReplacedResources"], schemas["ReplacedScale"] = resources, scale
    replaced["properties"]["resources"] = {"$ref": "#/components/schemas/ReplacedResources"}
    replaced["properties"]["scale"] = {"$ref": "#/components/schemas/ReplacedScale"}
    doc["components"]["schemas"]["ReplacedSpec"] = replaced
    put["requestBody"]["content"]["application/json"]["schema"] = {
        "$ref": "#/components/schemas/ReplacedSpec"
    }
    # A batch run reads a bucket of the caller's and writes one: those made before the run.
    batch = doc["components"]["schemas"]["BatchRequest"]["properties"]
    batch["deployment"] = {"type": "string", "enum": [JOBS_DEPLOYMENT["name"]]}
    batch["input"] = {"type": "string", "enum": [JOBS_DEPLOYMENT["input"]]}
    batch["output"] = {"type": "string", "enum": [BATCH_OUTPUT]}
    for with_model in ("model", "replicas", "resources"):  # only with a model, not a deployment
        batch[with_model] = {"type": "null"}
    # Jobs are uploaded to a deployment that reads a bucket: the one made before the run. And
    # a model's input is its own (its status has its input_schema): native predictions go to
    # that deployment's echo model, which takes any JSON (not to the fronts' models below).
    for path in ("/api/v1/deployments/{name}/jobs", "/api/v1/deployments/{name}/predict"):
        for param in doc["paths"][path]["post"]["parameters"]:
            if param["name"] == "name":
                param["schema"] = {"type": "string", "enum": [JOBS_DEPLOYMENT["name"]]}
    return with_front_fixtures(doc)


def ref_name(schema: Any) -> str:
    """The component a property's schema refers to (``$ref`` at any depth: FastAPI may wrap it
    in ``allOf`` beside a default)."""
    text = json.dumps(schema)
    found = re.search(r'"\$ref": "#/components/schemas/([^"]+)"', text)
    assert found is not None, text
    return found.group(1)


def with_front_fixtures(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with the protocol fronts pinned to the models deployed for them.

    A model's own inputs are its own (the Open Inference Protocol model's tensors, a DEEPaaS
    module's arguments); the platform's document states the protocol and points at where each
    model states its inputs (``GET /v2/models/{name}``, ``/deepaas/{deployment}/swagger.json``).
    Here the fuzzed copy states those of the two models deployed for the run."""
    for path, item in doc["paths"].items():
        for op in item.values():
            for param in op.get("parameters", []):
                pinned = {
                    ("/v2/models/", "name"): "fuzz-oip",
                    ("/v2/models/", "version"): "1.0",
                    ("/deepaas/", "deployment"): "fuzz-deepaas",
                    ("/deepaas/", "model"): "deepaas_files",
                }
                for (prefix, name), value in pinned.items():
                    if path.startswith(prefix) and param["name"] == name:
                        param["schema"] = {"type": "string", "enum": [value]}
            if path.endswith("/infer"):
                # JSON tensors (the binary extension is tritonclient's, tested with it)
                content = op["requestBody"]["content"]
                content.pop("application/octet-stream")
                op["parameters"] = [p for p in op["parameters"] if p["in"] == "path"]
    schemas = doc["components"]["schemas"]
    # examples/digits: one input "image", FP32 [-1, 8, 8], grey levels 0-16 (its input_schema)
    tensor = schemas["OipRequestInput"]["properties"]
    tensor["name"] = {"type": "string", "enum": ["image"]}
    tensor["datatype"] = {"type": "string", "enum": ["FP32"]}
    tensor["shape"] = {"type": "array", "enum": [[1, 8, 8]]}
    tensor["data"] = {
        "type": "array",
        "minItems": 64,
        "maxItems": 64,
        "items": {"type": "number", "minimum": 0, "maximum": 16},
    }
    del tensor["parameters"]  # binary_data_size: the binary extension again
    schemas["OipRequestInput"]["required"] = ["name", "shape", "datatype", "data"]
    schemas["OipInferenceRequest"]["properties"]["inputs"]["maxItems"] = 1
    out = schemas["OipRequestOutput"]["properties"]
    out["name"] = {"type": "string", "enum": ["digit", "probabilities"]}
    # tests/fixtures/models/deepaas_files: its get_predict_args(), as its swagger.json has them
    predict = doc["paths"]["/deepaas/{deployment}/v2/models/{model}/predict/"]["post"]
    predict["requestBody"] = {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["upload", "repeat"],
                    "properties": {
                        "upload": {"type": "string", "format": "binary"},
                        "repeat": {"type": "integer", "minimum": 1, "maximum": 5},
                        "mode": {"type": "string", "enum": ["size", "upper", "lines"]},
                    },
                    "additionalProperties": False,
                }
            }
        },
    }
    return doc


def mostly_rejected(output: str) -> set[str]:
    """The operations schemathesis lists under its "mostly rejected generated data" warning."""
    found: set[str] = set()
    block = re.search(r"mostly rejected generated data due to[^\n]*\n\n(.*?)\n\n", output, re.S)
    if block:
        for line in block.group(1).splitlines():
            line = line.strip()
            if line.startswith("- "):
                found.add(line[2:].strip())
    return found


@pytest.mark.timeout(600)
def test_schemathesis_finds_no_server_error_and_no_schema_violation(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "up.log").open("wb")
    up = subprocess.Popen(
        [*CLI, "up", "--data-dir", str(data), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_http(f"{url}/api/v1/health", timeout=60)
        token = (data / "admin.token").read_text().strip()
        auth = {"Authorization": f"Bearer {token}"}
        for spec in (JOBS_DEPLOYMENT, PUT_DEPLOYMENT, *FRONT_DEPLOYMENTS):
            made = httpx.post(f"{url}/api/v1/deployments", json=spec, headers=auth)
            assert made.status_code == 201, made.text
        made = httpx.post(f"{url}/api/v1/buckets", json={"name": BATCH_OUTPUT}, headers=auth)
        assert made.status_code == 201, made.text

        def fronts_ready() -> bool:  # a loaded replica each: model metadata is known
            oip = httpx.get(f"{url}/v2/models/fuzz-oip/ready", headers=auth)
            # (this one waits for the replica, as a request while a deployment starts does)
            deepaas = httpx.get(f"{url}/deepaas/fuzz-deepaas/v2/models/", headers=auth, timeout=60)
            return oip.status_code == deepaas.status_code == 200

        wait_until(fronts_ready, timeout=60, interval=0.2, what="the fronts' deployments ready")
        doc = httpx.get(f"{url}/openapi.json", timeout=30).json()
        schema = tmp_path / "openapi.json"
        schema.write_text(json.dumps(with_fixtures(doc)))
        config = tmp_path / "schemathesis.toml"
        config.write_text(CONFIG)
        # MODELPLANE_FUZZ_PATHS=REGEX fuzzes only those paths (e.g. "^/api/v1/advise$")
        paths = os.environ.get("MODELPLANE_FUZZ_PATHS")
        only = ["--include-path-regex", paths] if paths else []
        run = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "--config-file",
                str(config),
                "run",
                str(schema),
                "--url",
                url,
                "--header",
                f"Authorization: Bearer {token}",
                "--checks",
                "not_a_server_error,response_schema_conformance",
                "--max-examples",
                str(EXAMPLES_PER_OPERATION),
                "--seed",
                "12",
                "--workers",
                "1",
                # Advice from given costs is CPU-bound, bounded by its work limit (advise.
                # MAX_WORK: ~4.5 s of CPU at most, ~2.5 s for a busy day); room for a busy
                # shared 2-core machine over the default 10 s.
                "--request-timeout",
                "30",
                *only,
                "--exclude-operation-id-regex",
                "revoke|delete_user|deepaas_train$",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=540,
            env={
                **os.environ,
                "SCHEMATHESIS_HOOKS": str(HOOKS),
                # where the hooks make the replaced deployment again when it is gone
                "MODELPLANE_FUZZ_URL": url,
                "MODELPLANE_FUZZ_TOKEN": token,
                "MODELPLANE_FUZZ_PUT_SPEC": json.dumps(PUT_DEPLOYMENT),
            },
        )
        print(run.stdout[run.stdout.rfind("SUMMARY") :])  # the figures, shown with -rP or -s
        platform_log = (tmp_path / "up.log").read_text(errors="replace")
        tracebacks = "\n".join(re.findall(r"Traceback.*?\n(?=\S)\S[^\n]*", platform_log, re.S))
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:] + tracebacks[-4000:]
        assert "Server error" not in run.stdout
        rejected = mostly_rejected(run.stdout)
        unexplained = rejected - set(INHERENTLY_REJECTED)
        assert not unexplained, (
            f"the document does not state what these operations accept: {sorted(unexplained)}"
        )
        assert up.poll() is None, "the platform died under fuzzing"
    finally:
        up.terminate()
        up.wait(30)
        log.close()


def test_the_rejected_list_is_read_from_schemathesis_output() -> None:
    text = (
        "Schema validation mismatch: 2 operations mostly rejected generated data due to "
        "validation errors, indicating schema constraints don't match API validation\n\n"
        "  - POST /api/v1/advise\n  - PUT /system/services\n\n💡 Check your schema"
    )
    assert mostly_rejected(text) == {"POST /api/v1/advise", "PUT /system/services"}
    assert mostly_rejected("no warnings at all") == set()

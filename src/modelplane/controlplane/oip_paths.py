"""The Open Inference Protocol v2 front (:mod:`modelplane.gateway.oip`) as OpenAPI path items.

The paths, bodies and statuses of KServe's Open Inference Protocol v2 REST API, with what this
front checks: ``{name}`` is a deployment's name, datatypes are the codec's, shapes are sizes, an
infer request has inputs; a model's own tensors are in its metadata (GET /v2/models/{name}).
"""

from __future__ import annotations

import copy
from typing import Any

from modelplane.controlplane.front_parts import (
    PREDICTION_ERRORS,
    SECURED,
    deployment_param,
    errors,
    json_response,
    ref,
)

OIP_DATATYPES = [
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
]
"""The tensor datatypes the OIP codec reads and writes (:data:`modelplane.fronts.oip.DATATYPES`)."""

_TAGS = ["Open Inference Protocol v2"]

SCHEMAS: dict[str, dict[str, Any]] = {
    "OipError": {
        "type": "object",
        "description": "the protocol's error body",
        "required": ["error"],
        "properties": {"error": {"type": "string"}},
    },
    "OipServerMetadata": {
        "type": "object",
        "required": ["name", "version", "extensions"],
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "extensions": {"type": "array", "items": {"type": "string"}},
        },
    },
    "OipLive": {
        "type": "object",
        "required": ["live"],
        "properties": {"live": {"type": "boolean"}},
    },
    "OipReady": {
        "type": "object",
        "required": ["ready"],
        "properties": {"ready": {"type": "boolean"}},
    },
    "OipModelReady": {
        "type": "object",
        "required": ["name", "ready"],
        "properties": {
            "name": {"type": "string"},
            "ready": {"type": "boolean"},
            "error": {"type": "string", "description": "why it is not ready"},
        },
    },
    "OipTensorMetadata": {
        "type": "object",
        "required": ["name", "datatype", "shape"],
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string", "enum": OIP_DATATYPES},
            "shape": {
                "type": "array",
                "items": {"type": "integer", "minimum": -1},
                "description": "-1: any size",
            },
        },
    },
    "OipModelMetadata": {
        "type": "object",
        "required": ["name", "versions", "platform", "inputs", "outputs"],
        "properties": {
            "name": {"type": "string"},
            "versions": {"type": "array", "items": {"type": "string"}},
            "platform": {"type": "string"},
            "inputs": {"type": "array", "items": ref("OipTensorMetadata")},
            "outputs": {"type": "array", "items": ref("OipTensorMetadata")},
        },
    },
    "OipRequestInput": {
        "type": "object",
        "description": "one input tensor: its elements in ``data`` (flat in row-major order, or "
        "nested), or, with the binary tensor data extension, ``parameters.binary_data_size`` "
        "bytes after the JSON header. The model's declared inputs (GET /v2/models/{name}) fix "
        "the names, datatypes and shapes it takes; the element count must be the shape's.",
        "required": ["name", "shape", "datatype"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {"type": "string", "enum": OIP_DATATYPES},
            "parameters": {
                "type": "object",
                "properties": {"binary_data_size": {"type": "integer", "minimum": 0}},
            },
            "data": {
                "description": "numbers (booleans for BOOL) or, for BYTES, strings",
                "type": "array",
            },
        },
    },
    "OipRequestOutput": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string"},
            "parameters": {
                "type": "object",
                "properties": {"binary_data": {"type": "boolean"}},
            },
        },
    },
    "OipInferenceRequest": {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "parameters": {
                "type": "object",
                "properties": {"binary_data_output": {"type": "boolean"}},
            },
            "inputs": {"type": "array", "minItems": 1, "items": ref("OipRequestInput")},
            "outputs": {
                "type": "array",
                "items": ref("OipRequestOutput"),
                "description": "the outputs to return (default: every declared output)",
            },
        },
    },
    "OipResponseOutput": {
        "type": "object",
        "required": ["name", "shape", "datatype"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {"type": "string", "enum": OIP_DATATYPES},
            "parameters": {
                "type": "object",
                "properties": {"binary_data_size": {"type": "integer", "minimum": 0}},
            },
            "data": {"type": "array"},
        },
    },
    "OipInferenceResponse": {
        "type": "object",
        "required": ["model_name", "outputs"],
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "outputs": {"type": "array", "items": ref("OipResponseOutput")},
        },
    },
}

_VERSION = {
    "name": "version",
    "in": "path",
    "required": True,
    "description": "the model's version (its metadata's ``version``); another is 404",
    "schema": {"type": "string", "minLength": 1, "pattern": "^[^/]+$"},
}


def paths() -> dict[str, Any]:
    """The Open Inference Protocol v2 REST paths; ``{name}`` is a deployment's name."""
    model = deployment_param("name", "a deployment's name")
    ready_op = {
        "tags": _TAGS,
        "security": SECURED,
        "responses": {
            "200": json_response(ref("OipModelReady"), "the model has a ready replica"),
            "400": json_response(
                ref("OipModelReady"),
                "the model has no ready replica (an infer request still works: it waits for "
                "a cold start)",
            ),
            **errors("OipError", 401, 404),
        },
    }
    metadata_op = {
        "tags": _TAGS,
        "security": SECURED,
        "responses": {
            "200": json_response(ref("OipModelMetadata"), "the model's name, versions and tensors"),
            **errors("OipError", 401, 404, 503),
        },
    }
    infer_op: dict[str, Any] = {
        "tags": _TAGS,
        "security": SECURED,
        "parameters": [
            {
                "name": "Inference-Header-Content-Length",
                "in": "header",
                "required": False,
                "description": "binary tensor data extension: the length of the JSON header "
                "that starts the body; the tensors' bytes follow it",
                "schema": {"type": "integer", "minimum": 0},
            },
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": ref("OipInferenceRequest")},
                "application/octet-stream": {
                    "schema": {"type": "string", "format": "binary"},
                    "description": "a JSON header (OipInferenceRequest) of "
                    "Inference-Header-Content-Length bytes, then the inputs' binary data",
                },
            },
        },
        "responses": {
            "200": {
                "description": "the output tensors; with binary outputs the body is the JSON "
                "header (Inference-Header-Content-Length bytes) then the outputs' bytes",
                "content": {
                    "application/json": {"schema": ref("OipInferenceResponse")},
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                },
            },
            **errors("OipError", 400, *PREDICTION_ERRORS),
            **errors("OipError", 415),
        },
    }
    paths: dict[str, Any] = {
        "/v2": {
            "get": {
                "tags": _TAGS,
                "summary": "Server metadata (no token needed)",
                "operationId": "oip_server_metadata",
                "responses": {
                    "200": json_response(ref("OipServerMetadata"), "name, version, extensions")
                },
            }
        },
        "/v2/health/live": {
            "get": {
                "tags": _TAGS,
                "summary": "Server liveness (no token needed)",
                "operationId": "oip_server_live",
                "responses": {"200": json_response(ref("OipLive"), "the server is live")},
            }
        },
        "/v2/health/ready": {
            "get": {
                "tags": _TAGS,
                "summary": "Server readiness (no token needed)",
                "operationId": "oip_server_ready",
                "responses": {"200": json_response(ref("OipReady"), "the server is ready")},
            }
        },
    }
    for versioned in (False, True):
        params = [model, _VERSION] if versioned else [model]
        base = "/v2/models/{name}" + ("/versions/{version}" if versioned else "")
        suffix = "_version" if versioned else ""
        paths[base] = {
            "get": {
                **copy.deepcopy(metadata_op),
                "summary": "A model's metadata: its tensors"
                + (" (one version)" if versioned else ""),
                "operationId": "oip_model_metadata" + suffix,
                "parameters": params,
            }
        }
        paths[base + "/ready"] = {
            "get": {
                **copy.deepcopy(ready_op),
                "summary": "Whether a model has a ready replica",
                "operationId": "oip_model_ready" + suffix,
                "parameters": params,
            }
        }
        infer = copy.deepcopy(infer_op)
        infer["parameters"] = [*params, *infer["parameters"]]
        paths[base + "/infer"] = {
            "post": {
                **infer,
                "summary": "Run an inference: tensors in, tensors out",
                "operationId": "oip_infer" + suffix,
            }
        }
    return paths

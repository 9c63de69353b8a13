"""The DEEPaaS v2 front (:mod:`modelplane.gateway.deepaas`) as OpenAPI path items.

DEEPaaS v2's routes of one deployment, under ``/deepaas/{deployment}``: the version documents,
the module's metadata and Swagger document, predictions and trainings, with the bodies this front
sends (webargs' messages on 422, DEEPaaS's plain-text 404 for a missing training). A module's own
arguments are its own: its document (``…/swagger.json``) states them.
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

_TRAINING_UUID = r"^[0-9a-f]{32}$"
_TAGS = ["DEEPaaS v2"]

SCHEMAS: dict[str, dict[str, Any]] = {
    "DeepaasLink": {
        "type": "object",
        "required": ["rel", "href"],
        "properties": {
            "rel": {"type": "string"},
            "type": {"type": "string"},
            "href": {"type": "string"},
        },
    },
    "DeepaasVersion": {
        "type": "object",
        "required": ["version", "id", "links"],
        "properties": {
            "version": {"type": "string", "enum": ["stable"]},
            "id": {"type": "string", "enum": ["v2"]},
            "links": {"type": "array", "items": ref("DeepaasLink")},
        },
    },
    "DeepaasVersions": {
        "type": "object",
        "required": ["versions", "links"],
        "properties": {
            "versions": {"type": "array", "items": ref("DeepaasVersion")},
            "links": {"type": "array", "items": ref("DeepaasLink")},
        },
    },
    "DeepaasModel": {
        "type": "object",
        "description": "the module's metadata (get_metadata()), with its id, name and link",
        "required": ["id", "name", "links"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "links": {"type": "array", "items": ref("DeepaasLink")},
        },
        "additionalProperties": True,
    },
    "DeepaasModels": {
        "type": "object",
        "required": ["models"],
        "properties": {"models": {"type": "array", "items": ref("DeepaasModel")}},
    },
    "DeepaasArgumentErrors": {
        "type": "object",
        "description": "webargs' messages: each invalid argument with its messages",
        "additionalProperties": True,
    },
    "DeepaasTraining": {
        "type": "object",
        "required": ["uuid", "status"],
        "properties": {
            "uuid": {"type": "string", "pattern": _TRAINING_UUID},
            "date": {"type": "string"},
            "args": {"type": "object"},
            "status": {"type": "string", "enum": ["running", "done", "error", "cancelled"]},
            "result": {},
            "message": {"type": "string"},
        },
    },
    "DeepaasArguments": {
        "type": "object",
        "description": "the module's own arguments (get_predict_args() or get_train_args()); "
        "each model states them in its document, GET /deepaas/{deployment}/swagger.json. "
        "Arguments may come in the query string too.",
        "additionalProperties": True,
    },
}


def paths() -> dict[str, Any]:
    """DEEPaaS v2's REST paths of one deployment, under ``/deepaas/{deployment}``."""
    deployment = deployment_param("deployment", "a deployment whose model is a DEEPaaS module")
    model = {
        "name": "model",
        "in": "path",
        "required": True,
        "description": "the module's name (GET …/v2/models/ lists it); another is 404",
        "schema": {"type": "string", "minLength": 1, "pattern": "^[^/?#]+$"},
    }
    uuid = {
        "name": "uuid",
        "in": "path",
        "required": True,
        "description": "a training's uuid, as its POST answered it",
        "schema": {"type": "string", "pattern": _TRAINING_UUID},
    }
    refused = errors("FrontError", 401, 404)

    def op(summary: str, op_id: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {
            "tags": _TAGS,
            "summary": summary,
            "operationId": "deepaas_" + op_id,
            "security": SECURED,
            "parameters": [deployment, *extra.pop("parameters", [])],
            "responses": {**refused, **responses},
            **extra,
        }

    arguments = {
        "required": False,
        "content": {
            media: {"schema": ref("DeepaasArguments")}
            for media in (
                "multipart/form-data",
                "application/x-www-form-urlencoded",
                "application/json",
            )
        },
    }
    invalid = json_response(
        ref("DeepaasArgumentErrors"), "arguments that the module's fields refuse"
    )
    training = json_response(ref("DeepaasTraining"), "the training")
    no_training = {  # a missing training is DEEPaaS's plain-text 404
        "description": "no such deployment (or not yours): modelplane's error; no such "
        "training: DEEPaaS's plain text",
        "content": {
            "application/json": {"schema": ref("FrontError")},
            "text/plain": {"schema": {"type": "string"}},
        },
    }
    base = "/deepaas/{deployment}"
    return {
        base + "/": {
            "get": op(
                "DEEPaaS: the API versions",
                "versions",
                {"200": json_response(ref("DeepaasVersions"), "the versions and documents")},
            )
        },
        base + "/v2/": {
            "get": op(
                "DEEPaaS: version 2",
                "v2",
                {"200": json_response(ref("DeepaasVersion"), "version 2 and its link")},
            )
        },
        base + "/v2/debug/": {
            "get": op(
                "DEEPaaS: debug output (none, as deepaas-run without --debug)",
                "debug",
                {"204": {"description": "nothing to show"}},
            )
        },
        base + "/api": {
            "get": op(
                "DEEPaaS: the Swagger UI of the model's document",
                "ui",
                {
                    "200": {
                        "description": "an HTML page",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
            )
        },
        base + "/api/static/{asset}": {
            "get": op(
                "DEEPaaS: a file of the Swagger UI (swagger-ui.css, swagger-ui-bundle.js, …)",
                "ui_asset",
                {
                    "200": {
                        "description": "the file",
                        "content": {
                            media: {"schema": {"type": "string"}}
                            for media in ("text/css", "application/javascript", "application/json")
                        },
                    }
                },
                parameters=[
                    {
                        "name": "asset",
                        "in": "path",
                        "required": True,
                        "description": "a file the Swagger UI page loads; another is 404",
                        "schema": {"type": "string", "pattern": r"^[^/]+\.(css|js|map)$"},
                    }
                ],
            )
        },
        base + "/swagger.json": {
            "get": op(
                "DEEPaaS: the model's own (Swagger 2.0) document, with its arguments",
                "swagger",
                {
                    "200": json_response({"type": "object"}, "the document"),
                    **errors("FrontError", *PREDICTION_ERRORS),
                },
            )
        },
        base + "/v2/models/": {
            "get": op(
                "DEEPaaS: the deployment's model",
                "models",
                {
                    "200": json_response(
                        ref("DeepaasModels"), "one model: the deployment's module"
                    ),
                    **errors("FrontError", *PREDICTION_ERRORS),
                },
            )
        },
        base + "/v2/models/{model}/": {
            "get": op(
                "DEEPaaS: the model's metadata",
                "model",
                {
                    "200": json_response(ref("DeepaasModel"), "the module's metadata"),
                    **errors("FrontError", *PREDICTION_ERRORS),
                },
                parameters=[model],
            )
        },
        base + "/v2/models/{model}/predict/": {
            "post": op(
                "DEEPaaS: a prediction",
                "predict",
                {
                    "200": {
                        "description": "the prediction: JSON, or the media type the module's "
                        "``accept`` argument asked for",
                        "content": {"application/json": {"schema": {}}, "*/*": {"schema": {}}},
                    },
                    "400": json_response(
                        {"anyOf": [ref("DeepaasArgumentErrors"), ref("FrontError")]},
                        "a body that cannot be read (JSON that does not parse, a broken "
                        "multipart body)",
                    ),
                    "422": invalid,
                    **errors("FrontError", *PREDICTION_ERRORS),
                },
                parameters=[model],
                requestBody=arguments,
            )
        },
        base + "/v2/models/{model}/train/": {
            "get": op(
                "DEEPaaS: the deployment's trainings",
                "trainings",
                {
                    "200": json_response(
                        {"type": "array", "items": ref("DeepaasTraining")}, "trainings"
                    )
                },
                parameters=[model],
            ),
            "post": op(
                "DEEPaaS: start a training (a process of its own in the deployment's sandbox, "
                "holding one replica's worth of its resources; never a serving replica)",
                "train",
                {
                    "200": training,
                    "422": invalid,
                    **errors("FrontError", 400, 403, 409, 500, 503),
                },
                parameters=[model],
                requestBody=copy.deepcopy(arguments),
            ),
        },
        base + "/v2/models/{model}/train/{uuid}": {
            "get": op(
                "DEEPaaS: one training",
                "training",
                {"200": training, "404": no_training},
                parameters=[model, uuid],
            ),
            "delete": op(
                "DEEPaaS: cancel a training and forget it",
                "cancel_training",
                {"200": training, "404": no_training},
                parameters=[model, uuid],
            ),
        },
    }

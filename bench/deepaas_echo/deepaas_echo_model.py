"""The echo model as a DEEPaaS v2 module: ``predict`` returns what it was given.

DEEPaaS 2.6 finds it through the ``deepaas.v2.model`` entry point named ``echo`` (see
pyproject.toml beside this file), so ``deepaas-run --model-name echo`` serves it at
``POST /v2/models/echo/predict/``. DEEPaaS 2.6 parses predict arguments with webargs 5, whose
default locations are query string, form and JSON body, so the same JSON body the other servers
get, ``{"inputs": [1, 2, 3], "name": "bench"}``, maps onto the two arguments below.
"""

from __future__ import annotations

from typing import Any

from webargs import fields


def get_metadata() -> dict[str, Any]:
    return {
        "name": "echo",
        "version": "1.0",
        "description": "Returns the arguments it is given (benchmark model).",
        "author": "modelplane bench",
        "license": "Apache-2.0",
    }


def warm() -> None:
    pass


def get_predict_args() -> dict[str, Any]:
    return {
        "inputs": fields.Raw(required=True, metadata={"description": "anything JSON"}),
        "name": fields.Str(load_default="", metadata={"description": "a label"}),
    }


def predict(**kwargs: Any) -> Any:
    return {"inputs": kwargs.get("inputs"), "name": kwargs.get("name")}

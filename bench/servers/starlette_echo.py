"""Baseline: bare Starlette on uvicorn (uvloop + httptools) serving the echo model in-process."""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


class Echo:
    def predict(self, inputs: object) -> object:
        return inputs


MODEL = Echo()


async def predict(request: Request) -> JSONResponse:
    return JSONResponse(MODEL.predict(await request.json()))


app = Starlette(routes=[Route("/predict", predict, methods=["POST"])])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http="httptools",
                log_level="warning", access_log=False)

"""The floor of bench/serving.py: a bare Starlette endpoint that calls the same model.

    python serving_floor.py MODEL.skops PORT

POST /predict takes mloop's body, {"records": [{column: value, ...}, ...]}, builds a DataFrame,
calls predict on it and answers {"predictions": [...]}: no validation, batching or logging,
the least any JSON server of this model must do. Served by uvicorn with its defaults (uvloop
and httptools where installed), one process, as `mloop serve` is.
"""

from __future__ import annotations

import sys
from typing import Any

import pandas as pd
import uvicorn
from serving_data import load
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def create_app(model: Any) -> Starlette:
    async def predict(request: Request) -> JSONResponse:
        body = await request.json()
        predictions = model.predict(pd.DataFrame(body["records"]))
        return JSONResponse({"predictions": predictions.tolist()})

    return Starlette(routes=[Route("/predict", predict, methods=["POST"])])


def main() -> None:
    model_path, port = sys.argv[1], int(sys.argv[2])
    uvicorn.run(
        create_app(load(model_path)),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()

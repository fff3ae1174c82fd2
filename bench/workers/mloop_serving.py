"""mloop's side of bench/serving.py, run in mloop's venv with MLOOP_TRACKING_URI set.

train: fit the classifier once and save it with skops (every side loads these bytes).
register: register that model in mloop's registry and point the alias at it.
"""

from __future__ import annotations

from typing import Any

from protocol import serve
from registry_data import checksum
from serving_data import (
    ALIAS,
    MODEL_NAME,
    REQUEST_ROW,
    load,
    request_record,
    save,
    train,
    training_data,
)

import mloop


def train_model(model_path: str) -> dict[str, Any]:
    model = train()
    save(model, model_path)
    X, _ = training_data()
    predictions = load(model_path).predict(X)
    return {
        "record": request_record(),
        "prediction": int(predictions[REQUEST_ROW]),
        "checksum": checksum(predictions),
    }


def register(model_path: str) -> dict[str, Any]:
    X, _ = training_data()
    version = mloop.register(load(model_path), MODEL_NAME, input_example=X.iloc[:5], alias=ALIAS)
    served = mloop.load_model(f"models:/{MODEL_NAME}@{ALIAS}")
    return {"version": version.version, "checksum": checksum(served.predict(X))}


if __name__ == "__main__":
    serve({"train": train_model, "register": register})

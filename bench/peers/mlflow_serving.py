"""MLflow's side of bench/serving.py; runs in .venv-bench/mlflow with MLFLOW_TRACKING_URI set.

register: log the model that mloop's side trained (the same skops bytes) with mlflow.sklearn,
register it and point the alias at it, for `mlflow models serve -m models:/NAME@ALIAS`.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import mlflow
from mlflow import MlflowClient
from protocol import serve
from registry_data import checksum
from serving_data import ALIAS, MODEL_NAME, load, training_data


def register(model_path: str) -> dict[str, Any]:
    warnings.filterwarnings("ignore")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    X, _ = training_data()
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            load(model_path), name="model", registered_model_name=MODEL_NAME,
            input_example=X.iloc[:5],
        )  # fmt: skip
    MlflowClient().set_registered_model_alias(MODEL_NAME, ALIAS, info.registered_model_version)
    served = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@{ALIAS}")
    return {"version": int(info.registered_model_version), "checksum": checksum(served.predict(X))}


if __name__ == "__main__":
    serve({"register": register})

"""MLflow's side of bench/registry.py; runs in .venv-bench/mlflow with MLFLOW_TRACKING_URI set.

setup: train the same forest, log it with mlflow.sklearn (its default serialization),
register it and point the alias at it. load: mlflow.pyfunc.load_model by alias, timed.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from typing import Any

import mlflow
from mlflow import MlflowClient
from protocol import serve
from registry_data import ALIAS, MODEL_NAME, TRUSTED, checksum, train, training_data


def _quiet() -> None:
    warnings.filterwarnings("ignore")
    logging.getLogger("mlflow").setLevel(logging.ERROR)


def setup(quick: bool) -> dict[str, Any]:
    _quiet()
    model, X = train(quick)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=MODEL_NAME,
            input_example=X.iloc[:5],
            # MLflow 3.17 saves with skops and refuses a forest's Tree unless told to trust it.
            skops_trusted_types=TRUSTED,
        )
    client = MlflowClient()
    client.set_registered_model_alias(MODEL_NAME, ALIAS, info.registered_model_version)
    local = mlflow.artifacts.download_artifacts(f"models:/{MODEL_NAME}@{ALIAS}")
    size = sum(
        os.path.getsize(os.path.join(folder, f))
        for folder, _, files in os.walk(local)
        for f in files
    )
    return {"package_bytes": size, "flavor_format": _format(local)}


def _format(folder: str) -> str:
    import yaml

    with open(os.path.join(folder, "MLmodel")) as f:
        spec = yaml.safe_load(f)
    return str(spec["flavors"]["sklearn"].get("serialization_format"))


def load(repeats: int) -> dict[str, Any]:
    _quiet()
    timings = []
    model = None
    for _ in range(repeats):
        start = time.perf_counter()
        model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@{ALIAS}")
        timings.append(time.perf_counter() - start)
    assert model is not None
    X, _ = training_data()
    return {"load_s": timings, "checksum": checksum(model.predict(X))}


if __name__ == "__main__":
    serve({"setup": setup, "load": load})

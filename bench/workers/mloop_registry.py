"""mloop's side of bench/registry.py; runs in mloop's venv with MLOOP_TRACKING_URI set.

setup: train the forest, register it twice (skops, the default; and joblib, opted in) and point
each one's alias at it. load: load one by alias `repeats` times in this process, timing each;
the first load also unzips the package into the local cache, later ones find it there.
"""

from __future__ import annotations

import time
from typing import Any

from protocol import serve
from registry_data import ALIAS, MODEL_NAME, TRUSTED, checksum, train, training_data

import mloop
from mloop.backends import backends
from mloop.registry import set_alias

NAMES = {"skops": MODEL_NAME, "joblib": f"{MODEL_NAME}-joblib"}


def setup(quick: bool) -> dict[str, Any]:
    model, X = train(quick)
    sizes = {}
    for serializer, name in NAMES.items():
        version = mloop.register(model, name, input_example=X.iloc[:5], serializer=serializer)
        set_alias(name, ALIAS, version.version)
        sizes[serializer] = backends().artifacts.size(version.digest)
    return {"package_bytes": sizes}


def load(repeats: int, serializer: str) -> dict[str, Any]:
    timings = []
    model = None
    for _ in range(repeats):
        start = time.perf_counter()
        model = mloop.load_model(
            f"models:/{NAMES[serializer]}@{ALIAS}",
            allow_pickle=serializer == "joblib",
            trusted_types=TRUSTED,
        )
        timings.append(time.perf_counter() - start)
    assert model is not None
    X, _ = training_data()
    return {"load_s": timings, "checksum": checksum(model.predict(X))}


if __name__ == "__main__":
    serve({"setup": setup, "load": load})

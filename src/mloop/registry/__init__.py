"""The model registry (paper component C6): model packages, versions, aliases, safe loading.

    import mloop

    with mloop.start_run(experiment="churn") as run:
        model = ...  # fit it
        run.log_model(model, name="churn", input_example=X[:5])

    mloop.registry.set_alias("churn", "production", 1)
    model = mloop.load_model("models:/churn@production")
    model.predict(X)

A package holds the serialized model in its flavor's native format (scikit-learn through
skops, XGBoost, LightGBM, ONNX, PyTorch, or a Python class), its signature, the library
versions it needs and the run and datasets it came from. See docs/registry.md.
"""

from __future__ import annotations

from mloop.registry._api import (
    delete_alias,
    get_model,
    get_version,
    list_models,
    list_versions,
    set_alias,
    set_model_tags,
    set_version_tags,
    update_model,
)
from mloop.registry._card import VersionLineage, model_card, render_html, version_lineage
from mloop.registry._load import load_model
from mloop.registry._model import Model, ModelMetadata
from mloop.registry._package import Manifest
from mloop.registry._refs import ModelRef, parse_ref
from mloop.registry._register import LoggedModel, log_model, register
from mloop.registry._save import save_model
from mloop.registry._signature import ColumnSpec, Signature, infer_signature
from mloop.registry.flavors import FLAVORS

__all__ = [
    "FLAVORS",
    "ColumnSpec",
    "LoggedModel",
    "Manifest",
    "Model",
    "ModelMetadata",
    "ModelRef",
    "Signature",
    "VersionLineage",
    "delete_alias",
    "get_model",
    "get_version",
    "infer_signature",
    "list_models",
    "list_versions",
    "load_model",
    "log_model",
    "model_card",
    "parse_ref",
    "register",
    "render_html",
    "save_model",
    "set_alias",
    "set_model_tags",
    "set_version_tags",
    "update_model",
    "version_lineage",
]

"""Serving (paper component C8): HTTP apps over the registry and the feature store.

The online model server (``create_model_app``, behind ``mloop serve churn@production``):
JSON and Open Inference Protocol v2 predictions, entity-key lookups from the feature store,
micro-batching, hot swap when the alias moves, canary and shadow traffic, Prometheus metrics.
The online feature server (``create_feature_app``), behind ``mloop features serve``.
See docs/serving.md.
"""

from __future__ import annotations

from mloop.serving._app import create_model_app
from mloop.serving._batch import BatchResult, predict_batch
from mloop.serving._deploy import Deployment, LocalDeployment, deploy
from mloop.serving._feature_server import create_feature_app
from mloop.serving._prediction_log import PredictionLog, read_predictions

__all__ = [
    "BatchResult",
    "Deployment",
    "LocalDeployment",
    "PredictionLog",
    "create_feature_app",
    "create_model_app",
    "deploy",
    "predict_batch",
    "read_predictions",
]

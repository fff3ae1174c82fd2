"""The demo's constants, importable without scikit-learn."""

from __future__ import annotations

DATASET_NAME = "breast_cancer"
DEMO_EXPERIMENT = "demo"
MAX_ROWS = 569  # every row of the bundled set
MIN_ROWS = 50  # enough for a stratified 5-fold cross-validation and a held-out test set
MODEL_NAME = "breast-cancer"  # the registered model the demo adds a version to
PRODUCTION = "production"

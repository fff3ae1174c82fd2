"""The model both sides of bench/registry.py register and load: the same data, seed and
estimator, so scikit-learn (the same version on both sides) builds the same forest.

Standard library + NumPy + scikit-learn only; imported by workers in either venv.
"""

from __future__ import annotations

from typing import Any

MODEL_NAME = "bench-forest"
ALIAS = "production"
ROWS = 20_000
FEATURES = 20
SEED = 7
N_ESTIMATORS = 45  # tuned so that the serialized forest is about 10 MB
QUICK_ESTIMATORS = 6


def training_data() -> tuple[Any, Any]:
    """A seeded classification problem as a DataFrame with named columns, and its labels."""
    import pandas as pd
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=ROWS, n_features=FEATURES, n_informative=12, random_state=SEED
    )
    return pd.DataFrame(X, columns=[f"f{i:02d}" for i in range(FEATURES)]), y


def train(quick: bool) -> tuple[Any, Any]:
    """The fitted forest and its training frame."""
    from sklearn.ensemble import RandomForestClassifier

    X, y = training_data()
    estimators = QUICK_ESTIMATORS if quick else N_ESTIMATORS
    model = RandomForestClassifier(n_estimators=estimators, random_state=SEED, n_jobs=1)
    return model.fit(X, y), X


def checksum(predictions: Any) -> int:
    """A short fingerprint of predictions, to show both sides loaded the same model."""
    return int(sum(int(p) * (i + 1) for i, p in enumerate(predictions[:2000])))


# A forest's node arrays are trusted explicitly on both sides: skops (which both use) does not
# trust them by default, since a forged file could make predict() read out of bounds.
TRUSTED = ["sklearn.tree._tree.Tree"]

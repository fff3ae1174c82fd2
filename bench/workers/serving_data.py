"""The model every side of bench/serving.py serves: a scikit-learn classifier on the bundled
breast-cancer data, trained once and saved with skops, so that mloop, MLflow and the floor all
load the same bytes.

Standard library + pandas + scikit-learn + skops only; imported by workers in either venv.
"""

from __future__ import annotations

from typing import Any

MODEL_NAME = "bench-cancer"
ALIAS = "production"
SEED = 7
REQUEST_ROW = 0  # the row every benchmark request sends


def training_data() -> tuple[Any, Any]:
    """scikit-learn's bundled breast-cancer data (569 rows, 30 named float columns), labels."""
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X, y


def train() -> Any:
    """The fitted classifier: standardize, then logistic regression (a textbook baseline)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = training_data()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=SEED))
    return model.fit(X, y)


def load(path: str) -> Any:
    """The model saved by `save`; refuses a file holding types skops does not trust by default."""
    import skops.io

    untrusted = skops.io.get_untrusted_types(file=path)
    if untrusted:
        raise ValueError(f"{path} holds types skops does not trust by default: {untrusted}")
    return skops.io.load(path)


def save(model: Any, path: str) -> None:
    import skops.io

    skops.io.dump(model, path)


def request_record() -> dict[str, float]:
    """The one row every request sends, as {column: value}."""
    X, _ = training_data()
    return {str(column): float(value) for column, value in X.iloc[REQUEST_ROW].items()}

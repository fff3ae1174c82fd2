"""Model classes that the flavor tests save by class path, so they live in an importable module."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import Ridge


class ShiftedRidge(Ridge):
    """A user subclass of a scikit-learn estimator: skops does not trust it by default."""

    def predict(self, X: Any) -> Any:
        return super().predict(X) + 1.0


class WeightedSum:
    """A pyfunc model whose state is JSON: weights per column and an offset."""

    def __init__(self, weights: dict[str, float], offset: float) -> None:
        self.weights = weights
        self.offset = offset

    def predict(self, frame: pd.DataFrame) -> pd.Series:
        return sum(frame[name] * weight for name, weight in self.weights.items()) + self.offset


class Threshold:
    """A pyfunc classifier: a column above a threshold is class "yes"."""

    def __init__(self, column: str, threshold: float) -> None:
        self.column = column
        self.threshold = threshold
        self.classes_ = ["no", "yes"]

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        above = (frame[self.column] > self.threshold).to_numpy(dtype=float)
        return np.column_stack([1.0 - above, above])

    def predict(self, frame: pd.DataFrame) -> list[str]:
        return [self.classes_[int(i)] for i in self.predict_proba(frame).argmax(axis=1)]


class ArrayState:
    """A pyfunc model holding a numpy array: not JSON, and no hooks."""

    def __init__(self, coef: np.ndarray) -> None:
        self.coef = coef

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return frame.to_numpy() @ self.coef


class Hooked(ArrayState):
    """The same model with save_model/load_model hooks that write the array as .npy."""

    def save_model(self, folder: Path) -> None:
        np.save(folder / "coef.npy", self.coef)
        (folder / "meta.json").write_text(json.dumps({"version": 1}))

    @classmethod
    def load_model(cls, folder: Path) -> Hooked:
        return cls(np.load(folder / "coef.npy", allow_pickle=False))


class OnlySaves(WeightedSum):
    """Defines one hook of the two."""

    def save_model(self, folder: Path) -> None:
        raise AssertionError("never called")


class TinyNet(torch.nn.Module):
    """A small regression network with constructor arguments (for the state_dict serializer)."""

    def __init__(self, n_inputs: int, hidden: int = 8) -> None:
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(n_inputs, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class VarArgsNet(torch.nn.Module):
    """TorchScript cannot script ``*inputs``; tracing works."""

    def __init__(self, n_inputs: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(n_inputs, 3)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.linear(inputs[0]), dim=1)

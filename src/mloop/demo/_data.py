"""The demo's data: scikit-learn's bundled breast-cancer set (no download), split for training."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from mloop.demo._limits import MAX_ROWS, MIN_ROWS
from mloop.errors import InvalidValueError

TARGET = "target"
TEST_SIZE = 0.25


@dataclass(frozen=True)
class DemoData:
    """The rows the demo trains and tests on; ``target`` is 1 for benign, 0 for malignant."""

    train: pd.DataFrame
    test: pd.DataFrame

    @property
    def rows(self) -> int:
        return len(self.train) + len(self.test)


def load_data(rows: int | None = None, *, seed: int = 0) -> DemoData:
    """``rows`` rows of the breast-cancer set (all 569 by default), split 75/25, stratified."""
    frame = load_breast_cancer(as_frame=True).frame
    if rows is not None:
        if isinstance(rows, bool) or not isinstance(rows, int) or not MIN_ROWS <= rows <= MAX_ROWS:
            raise InvalidValueError(
                f"the demo takes {MIN_ROWS} to {MAX_ROWS} rows (the size of its data set), "
                f"not {rows!r}"
            )
        if rows < len(frame):
            frame, _ = train_test_split(
                frame, train_size=rows, stratify=frame[TARGET], random_state=seed
            )
    train, test = train_test_split(
        frame, test_size=TEST_SIZE, stratify=frame[TARGET], random_state=seed
    )
    return DemoData(train=train.sort_index(), test=test.sort_index())

"""The demo's Markdown report: what was trained, how it scored, and where it errs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Evaluation:
    model: str
    rows: int
    train_rows: int
    test_rows: int
    fold_aucs: list[float]
    test: dict[str, float]
    y_true: list[int]
    y_pred: list[int]


def render_report(evaluation: Evaluation) -> str:
    """The report as Markdown text."""
    e = evaluation
    pairs = list(zip(e.y_true, e.y_pred, strict=True))
    matrix = {(t, p): sum(1 for pair in pairs if pair == (t, p)) for t in (0, 1) for p in (0, 1)}
    lines = [
        "# mloop demo: breast-cancer classifier",
        "",
        f"Model: {e.model} on standardized features. Data: scikit-learn's breast-cancer set, "
        f"{e.rows} rows ({e.train_rows} train, {e.test_rows} test); target 1 = benign, "
        "0 = malignant.",
        "",
        "## Cross-validation on the training set",
        "",
        "| fold | AUC |",
        "|---:|---:|",
        *(f"| {i} | {auc:.4f} |" for i, auc in enumerate(e.fold_aucs)),
        f"| mean | {sum(e.fold_aucs) / len(e.fold_aucs):.4f} |",
        "",
        "## Held-out test set",
        "",
        "| metric | value |",
        "|---|---:|",
        *(f"| {name} | {value:.4f} |" for name, value in sorted(e.test.items())),
        "",
        "Confusion matrix (rows: true class, columns: predicted class):",
        "",
        "| | predicted malignant | predicted benign |",
        "|---|---:|---:|",
        f"| malignant | {matrix[0, 0]} | {matrix[0, 1]} |",
        f"| benign | {matrix[1, 0]} | {matrix[1, 1]} |",
        "",
    ]
    return "\n".join(lines)


def write_report(path: Path, evaluation: Evaluation) -> Path:
    """Write the report to ``path`` and return it."""
    path.write_text(render_report(evaluation), encoding="utf-8")
    return path

"""A project folder on ``sys.path`` while its files (features.py, pipelines.py) are imported."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["project_on_path"]


@contextmanager
def project_on_path(project: Path) -> Iterator[None]:
    """The project folder first on ``sys.path`` (its modules import by name), then restored."""
    folder = str(project.resolve())
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        yield
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)

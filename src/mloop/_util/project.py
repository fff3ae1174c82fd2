"""Importing a project's files (features.py, pipelines.py) by name, with the folder on the path."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from mloop.errors import InvalidValueError

__all__ = ["import_project_file", "project_on_path"]


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


def import_project_file(file: Path, *, keep_on_path: bool = False) -> ModuleType:
    """Import ``file`` as the module named by its stem, its folder on ``sys.path``.

    ``keep_on_path`` leaves the folder there afterwards (process-pool workers import the
    file's functions by name). A file that fails to import leaves ``sys.modules`` as it was and
    gives an InvalidValueError naming the file and the error.
    """
    module_name = file.stem
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has one
        raise InvalidValueError(f"cannot import {file}")
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(module_name)
    sys.modules[module_name] = module
    folder = str(file.parent.resolve())
    if keep_on_path and folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        with project_on_path(file.parent):
            spec.loader.exec_module(module)
    except Exception as error:
        if previous is not None:
            sys.modules[module_name] = previous
        else:
            sys.modules.pop(module_name, None)
        raise InvalidValueError(
            f"importing {file} failed: {type(error).__name__}: {error}"
        ) from error
    return module

"""Finding pipelines: the ``pipelines.py`` of a project folder, or ``module:function``.

``mloop run training`` looks for a pipeline named ``training`` in ``pipelines.py`` of the
project folder (the folder holding ``mloop.yaml``, else the current one);
``mloop run my_package.flows:training`` imports it from a module instead (the current folder
is on the import path, as for ``python -m``).
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from mloop._util.project import import_project_file, project_on_path
from mloop.errors import InvalidValueError, NotFoundError
from mloop.pipelines._pipeline import Pipeline

__all__ = ["PIPELINES_FILE", "find_pipeline", "load_pipelines"]

PIPELINES_FILE = "pipelines.py"


def _collect(objects: dict[str, object], where: str) -> dict[str, Pipeline]:
    found: dict[str, Pipeline] = {}
    for item in objects.values():
        if isinstance(item, Pipeline):
            other = found.get(item.name)
            if other is not None and other is not item:
                raise InvalidValueError(
                    f"two pipelines in {where} are named {item.name!r}; names must be unique"
                )
            found[item.name] = item
    return dict(sorted(found.items()))


def load_pipelines(project_dir: str | Path) -> dict[str, Pipeline]:
    """Every pipeline defined in ``pipelines.py`` of ``project_dir`` (or that file), by name.

    The file is imported as the module ``pipelines`` with its folder on ``sys.path``, so it
    can import its neighbours, and its steps can be found again by process-pool workers. A
    folder without the file has no pipelines (an empty dict).
    """
    path = Path(project_dir)
    file = path / PIPELINES_FILE if path.is_dir() else path
    if not file.is_file():
        if path.is_dir():
            return {}
        raise NotFoundError(f"no pipelines file at {file}")
    if file.suffix != ".py" or not file.stem.isidentifier():
        raise InvalidValueError(f"{file.name} cannot be imported as a Python module")
    module = import_project_file(file, keep_on_path=True)
    return _collect(vars(module), str(file))


def find_pipeline(ref: str, project_dir: str | Path) -> Pipeline:
    """The pipeline ``ref`` names: a name in the project's ``pipelines.py``, or
    ``module:attribute`` (``module`` importable from ``project_dir``)."""
    if not isinstance(ref, str) or not ref:
        raise InvalidValueError(f"a pipeline is named by a string, not {ref!r}")
    if ":" in ref:
        module_name, _, attribute = ref.partition(":")
        with project_on_path(Path(project_dir)):
            try:
                module = importlib.import_module(module_name)
            except ImportError as error:
                raise NotFoundError(
                    f"cannot import module {module_name!r} for pipeline {ref!r}: {error}"
                ) from error
        found: object = module
        for part in attribute.split("."):
            found = getattr(found, part, None)
        if not isinstance(found, Pipeline):
            raise NotFoundError(
                f"{ref} is not a pipeline (found {type(found).__name__}); decorate the "
                "function with @pipeline"
            )
        return found
    pipelines = load_pipelines(project_dir)
    if ref not in pipelines:
        known = ", ".join(pipelines) or "none"
        raise NotFoundError(
            f"no pipeline named {ref!r} in {Path(project_dir) / PIPELINES_FILE} (its "
            f"pipelines: {known}); or name one as module:function"
        )
    return pipelines[ref]

"""Finding the definitions in a project: the module-level objects of its ``features.py``."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from mloop._util.project import import_project_file
from mloop.errors import InvalidValueError, NotFoundError
from mloop.features._defs import Definition, Entity, FeatureView, OnDemandFeatureView

__all__ = ["collect", "load_definitions"]

DEFINITIONS_FILE = "features.py"


def load_definitions(path: Path) -> list[Definition]:
    """Import ``path`` (a ``features.py``, or a folder holding one) and collect its definitions.

    The module is imported under its own name with its folder on ``sys.path``, so on-demand
    feature view functions defined in it are importable by the same name later.
    """
    file = path / DEFINITIONS_FILE if path.is_dir() else path
    if not file.is_file():
        raise NotFoundError(
            f"no feature definitions at {file}; write Entity and FeatureView objects in a "
            f"{DEFINITIONS_FILE} in the project folder (see docs/features.md)"
        )
    if file.suffix != ".py":
        raise InvalidValueError(f"feature definitions must be a .py file, not {file.name}")
    module_name = file.stem
    if not module_name.isidentifier():
        raise InvalidValueError(f"{file.name} cannot be imported: its name is not an identifier")
    module = import_project_file(file)
    return collect(vars(module).values())


def collect(objects: Iterable[object]) -> list[Definition]:
    """The definitions among ``objects`` (and the entities their views use), checked for
    clashing names; entities first, then feature views, then on-demand views, by name."""
    found: dict[tuple[str, str], Definition] = {}

    def add(item: Definition) -> None:
        key = (item.kind, item.name)
        existing = found.get(key)
        if existing is not None and existing.spec() != item.spec():
            raise InvalidValueError(
                f"two different {item.kind.replace('_', ' ')}s are named {item.name!r}; "
                "names must be unique"
            )
        found[key] = item

    for item in objects:
        if isinstance(item, FeatureView):
            for entity in item.entities:
                add(entity)
            add(item)
        elif isinstance(item, Entity | OnDemandFeatureView):
            add(item)
    views = {name for kind, name in found if kind == "feature_view"}
    for kind, name in list(found):
        if kind == "on_demand_feature_view":
            clash = name in views
            if clash:
                raise InvalidValueError(
                    f"an on-demand feature view and a feature view are both named {name!r}"
                )
    order = {"entity": 0, "feature_view": 1, "on_demand_feature_view": 2}
    return [found[key] for key in sorted(found, key=lambda k: (order[k[0]], k[1]))]

"""Names of a package that load their module on first use (PEP 562 module ``__getattr__``).

Used where a public name's module imports something slow (pandas, scikit-learn) that most
callers of the package never need::

    __getattr__, __dir__ = lazy_names(__name__, {"search_runs": "._search"}, globals(), __all__)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_names(
    package: str,
    names: Mapping[str, str],
    namespace: dict[str, Any],
    public: Sequence[str],
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module ``__getattr__`` and ``__dir__`` that import ``names[name]`` when asked."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value  # later lookups find it without coming here
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(public))

    return __getattr__, __dir__

"""Importing what a flavor needs: optional libraries, classes named in a package, versions.

Flavor modules import their library inside functions, through :func:`optional_import`, so that
``import mloop.registry`` stays light and a missing extra is reported with the command that
installs it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mloop.errors import InvalidValueError, MissingExtraError, NotFoundError


@contextmanager
def optional_import(package: str, extra: str, feature: str) -> Iterator[None]:
    """Turn an ImportError inside the block into a :class:`MissingExtraError`.

    >>> with optional_import("torch", "torch", "saving a PyTorch model"):
    ...     import torch
    """
    try:
        yield
    except ImportError as error:
        raise MissingExtraError(package, extra, feature) from error


def defined_in(model: Any, package: str) -> bool:
    """True if ``type(model)`` or one of its bases comes from ``package``; imports nothing."""
    prefix = package + "."
    return any(
        cls.__module__ == package or cls.__module__.startswith(prefix)
        for cls in type(model).__mro__
    )


def class_path(cls: type, what: str) -> str:
    """``"module:qualname"`` of ``cls``, checked to import back as the same class.

    ``what`` names the role of the class in messages, e.g. ``"pyfunc model"``.
    """
    name = cls.__qualname__
    if cls.__module__ == "__main__":
        raise InvalidValueError(
            f"the {what} class {name!r} is defined in __main__ (a script or notebook), so it "
            "cannot be imported when the model is loaded; move the class into a module "
            "(a .py file on the Python path) and import it from there"
        )
    if "<locals>" in name:
        raise InvalidValueError(
            f"the {what} class {name!r} is defined inside a function, so it cannot be imported "
            "when the model is loaded; define it at the top level of a module"
        )
    path = f"{cls.__module__}:{name}"
    try:
        found = import_class(path)
    except NotFoundError as error:
        raise InvalidValueError(f"the {what} class {path!r} cannot be imported: {error}") from None
    if found is not cls:
        raise InvalidValueError(
            f"the {what} class {path!r} imports as a different object than the model's class "
            "(was the module reloaded, or the class replaced?); save a model of the class the "
            "module defines"
        )
    return path


def import_class(path: str) -> type:
    """The class named ``"module:qualname"``; :class:`NotFoundError` if it does not import."""
    module_name, _, qualname = path.partition(":")
    if not module_name or not qualname:
        raise NotFoundError(f"{path!r} is not a class path of the form 'module:QualName'")
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise NotFoundError(
            f"module {module_name!r} for class {path!r} cannot be imported ({error}); install "
            "the code that defines it"
        ) from error
    for part in qualname.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise NotFoundError(
                f"module {module_name!r} has no {qualname!r} (class path {path!r}); "
                "install the version of the code that defines it"
            ) from None
    if not isinstance(found, type):
        raise NotFoundError(f"{path!r} is a {type(found).__name__}, not a class")
    return found


def versions(*distributions: str) -> dict[str, str]:
    """Installed versions of the named distributions; missing ones are left out."""
    found = {}
    for name in distributions:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found

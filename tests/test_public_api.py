"""The public names: what each package exports, and what `import mloop` costs."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import mloop

PACKAGES = [
    "mloop",
    "mloop.store",
    "mloop.artifacts",
    "mloop.tracking",
    "mloop.errors",
    "mloop.config",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_resolve(name: str) -> None:
    module = importlib.import_module(name)
    assert len(module.__all__) == len(set(module.__all__)), "duplicate names in __all__"
    for public in module.__all__:
        assert getattr(module, public) is not None, f"{name}.{public}"


def test_everyday_names_are_at_the_top() -> None:
    for name in ("start_run", "search_runs", "get_run", "active_run", "Run"):
        assert name in mloop.__all__
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = mloop.nope  # type: ignore[attr-defined]


def test_import_mloop_is_light() -> None:
    code = (
        "import sys, mloop; "
        "heavy = [m for m in ('sqlalchemy', 'pandas', 'ray', 'redis', 'psycopg', 'torch', "
        "'fastapi', 'typer', 'sklearn') if m in sys.modules]; print(','.join(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_tracking_does_not_pull_in_optional_backends() -> None:
    code = (
        "import sys, mloop.tracking; "
        "heavy = [m for m in ('ray', 'redis', 'psycopg', 'torch', 'fastapi', 'typer', 's3fs', "
        "'sklearn') if m in sys.modules]; print(','.join(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""

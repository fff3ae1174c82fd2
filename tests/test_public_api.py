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
    "mloop.backends",
    "mloop.events",
    "mloop.registry",
    "mloop.registry.flavors",
    "mloop.features",
    "mloop.pipelines",
    "mloop.compute",
    "mloop.serving",
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
    for name in ("start_run", "search_runs", "get_run", "active_run", "Run", "load_model"):
        assert name in mloop.__all__
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = mloop.nope  # type: ignore[attr-defined]


def modules_loaded_by(statement: str, candidates: tuple[str, ...]) -> list[str]:
    """Which of ``candidates`` a fresh interpreter has imported after ``statement``."""
    code = (
        f"import sys; {statement}; print(','.join(m for m in {candidates!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [name for name in done.stdout.strip().split(",") if name]


def test_import_mloop_is_light() -> None:
    heavy = (
        "sqlalchemy",
        "pandas",
        "ray",
        "redis",
        "psycopg",
        "torch",
        "fastapi",
        "typer",
        "sklearn",
    )
    assert modules_loaded_by("import mloop", heavy) == []


def test_tracking_does_not_pull_in_optional_backends() -> None:
    optional = ("ray", "redis", "psycopg", "torch", "fastapi", "typer", "s3fs", "sklearn")
    assert modules_loaded_by("import mloop.tracking", optional) == []


def test_the_registry_loads_no_model_library_until_a_model_needs_it() -> None:
    libraries = ("sklearn", "skops", "torch", "xgboost", "lightgbm", "onnxruntime", "typer")
    assert modules_loaded_by("import mloop.registry", libraries) == []

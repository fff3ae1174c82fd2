"""The pieces of a search that travel to workers: the search space and the Optuna storage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.storages import BaseStorage, InMemoryStorage, JournalStorage
from optuna.storages.journal import JournalFileBackend

from mloop.errors import InvalidValueError
from mloop.store import check_key

__all__ = ["StorageSpec", "check_space", "objective_value"]


def check_space(space: Mapping[str, Any] | None) -> dict[str, BaseDistribution] | None:
    """Optuna distributions from a dict space; a list or tuple is a set of choices."""
    if space is None:
        return None
    if not isinstance(space, Mapping):
        raise InvalidValueError(
            f"space must be a mapping of parameter names to distributions, not "
            f"{type(space).__name__}"
        )
    if not space:
        raise InvalidValueError("space is empty; give at least one parameter, or space=None")
    checked: dict[str, BaseDistribution] = {}
    for name, value in space.items():
        if not isinstance(name, str):
            raise InvalidValueError(f"space keys must be parameter names, not {name!r}")
        check_key(name, "parameter name")
        if isinstance(value, BaseDistribution):
            checked[name] = value
        elif isinstance(value, list | tuple) and value:
            try:
                checked[name] = CategoricalDistribution(list(value))
            except ValueError as error:
                raise InvalidValueError(f"space[{name!r}]: {error}") from None
        else:
            raise InvalidValueError(
                f"space[{name!r}] is {value!r}; use an Optuna distribution such as "
                "FloatDistribution(1e-4, 1e-1, log=True) or IntDistribution(1, 10), "
                "or a non-empty list of choices"
            )
    return checked


def objective_value(value: Any, metric: str) -> tuple[float, dict[str, float]]:
    """The value to optimize and all metrics, from what the objective returned."""
    if isinstance(value, Mapping):
        if metric not in value:
            raise InvalidValueError(
                f"the objective returned metrics {sorted(map(str, value))} without {metric!r}, "
                f"the metric tune optimizes; return it too or pass metric=<one of them>"
            )
        metrics = {str(key): _number(key, item) for key, item in value.items()}
        return metrics[metric], metrics
    number = _number(metric, value)
    return number, {metric: number}


def _number(key: Any, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = float(value)  # NumPy scalars and the like
        except (TypeError, ValueError):
            raise InvalidValueError(
                f"the objective must return a number or a mapping of numbers; {key} is "
                f"{value!r} ({type(value).__name__})"
            ) from None
    return float(value)


@dataclass(frozen=True)
class StorageSpec:
    """How a worker opens the study's storage: the object itself (in-process), a journal
    file (processes on this machine) or a database URL (anywhere)."""

    url: str | None = None
    journal: str | None = None
    memory: InMemoryStorage | None = None

    def open(self) -> BaseStorage | str:
        if self.memory is not None:
            return self.memory
        if self.journal is not None:
            return JournalStorage(JournalFileBackend(self.journal))
        assert self.url is not None
        return self.url

    def __reduce__(self) -> tuple[Any, ...]:
        if self.memory is not None:
            raise InvalidValueError(
                "an in-memory Optuna study cannot be shared with worker processes; "
                "pass storage= a database URL"
            )
        return (StorageSpec, (self.url, self.journal))


def journal_in(folder: Path) -> StorageSpec:
    return StorageSpec(journal=str(folder / "optuna-journal.log"))


def sequence_of_types(value: Any) -> tuple[type[BaseException], ...]:
    """``catch=`` as a tuple of exception classes."""
    items: Sequence[Any] = value if isinstance(value, tuple | list) else (value,)
    for item in items:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise InvalidValueError(f"catch must hold exception classes, not {item!r}")
    return tuple(items)

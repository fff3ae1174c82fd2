"""Feature definitions: entities, sources, feature views and on-demand feature views.

Users write these in their project's ``features.py``; ``mloop apply`` registers them. Every
definition has a canonical JSON ``spec`` (sorted keys, no Python objects), whose sha256 decides
whether an apply makes a new version. On-demand feature views name their function by import
path (``module:function``); the function is imported from the project's code when it runs and
is never serialized into the registry.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from mloop.errors import InvalidValueError
from mloop.features._checks import FEATURE_DTYPES, Constraint

__all__ = [
    "DTYPES",
    "Definition",
    "Entity",
    "FeatureView",
    "Field",
    "FileSource",
    "OnDemandFeatureView",
    "RequestSource",
    "SqlSource",
    "on_demand_feature_view",
    "spec_digest",
]

DTYPES: tuple[str, ...] = tuple(FEATURE_DTYPES)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_FUNCTION = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def check_identifier(name: object, what: str) -> str:
    """A definition or column name: a letter or _, then letters, digits, _ (at most 64)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        shown = repr(name) if not isinstance(name, str) or len(name) < 70 else repr(name[:60] + "…")
        raise InvalidValueError(
            f"{what} {shown} is not a valid name; use 1-64 letters, digits and _, starting "
            "with a letter or _"
        )
    return name


def _ttl(value: object, what: str) -> timedelta | None:
    if value is None:
        return None
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise InvalidValueError(f"{what} must be a positive timedelta or None, not {value!r}")
    return value


def spec_digest(spec: Mapping[str, Any]) -> str:
    """sha256 of a spec's canonical JSON: equal specs, equal digests."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Field:
    """A typed column of a feature view, with optional constraints checked on materialization."""

    name: str
    dtype: str
    description: str = ""
    constraint: Constraint | None = None

    def __post_init__(self) -> None:
        check_identifier(self.name, "field name")
        if self.dtype not in DTYPES:
            raise InvalidValueError(
                f"field {self.name!r} has dtype {self.dtype!r}; use one of {', '.join(DTYPES)}"
            )
        if not isinstance(self.description, str):
            raise InvalidValueError(f"field {self.name!r}: description must be a string")
        if self.constraint is not None and not isinstance(self.constraint, Constraint):
            raise InvalidValueError(f"field {self.name!r}: constraint must be a Constraint")

    def spec(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "description": self.description,
            "constraint": None if self.constraint is None else self.constraint.to_dict(),
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Field:
        constraint = spec.get("constraint")
        return cls(
            name=spec["name"],
            dtype=spec["dtype"],
            description=spec.get("description", ""),
            constraint=None if constraint is None else Constraint.from_dict(constraint),
        )


@dataclass(frozen=True)
class Entity:
    """What features describe (a customer, a merchant), identified by its join keys."""

    name: str
    join_keys: Sequence[str] = ()
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

    kind: Literal["entity"] = field(default="entity", init=False)

    def __post_init__(self) -> None:
        check_identifier(self.name, "entity name")
        given: Any = self.join_keys
        keys = (given,) if isinstance(given, str) else tuple(given) or (f"{self.name}_id",)
        for key in keys:
            check_identifier(key, f"join key of entity {self.name!r}")
        object.__setattr__(self, "join_keys", keys)
        object.__setattr__(self, "tags", _tags(self.tags, f"entity {self.name!r}"))

    def spec(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "join_keys": list(self.join_keys),
            "description": self.description,
            "tags": dict(self.tags),
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Entity:
        return cls(
            name=spec["name"],
            join_keys=tuple(spec["join_keys"]),
            description=spec.get("description", ""),
            tags=spec.get("tags", {}),
        )


def _tags(tags: object, owner: str) -> dict[str, str]:
    if not isinstance(tags, Mapping):
        raise InvalidValueError(f"{owner}: tags must be a mapping of strings")
    for key, value in tags.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidValueError(f"{owner}: tag {key!r} must map a string to a string")
    return dict(tags)


@dataclass(frozen=True)
class FileSource:
    """Rows in Parquet (a file, a folder, a glob; hive partitions) or CSV.

    A relative ``path`` is relative to the project folder.
    """

    path: str
    format: Literal["parquet", "csv"] = "parquet"
    hive_partitioning: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path or "\x00" in self.path:
            raise InvalidValueError(f"a FileSource needs a path string, not {self.path!r}")
        if self.format not in ("parquet", "csv"):
            raise InvalidValueError(
                f"FileSource format {self.format!r} is not supported; use 'parquet' or 'csv'"
            )

    def spec(self) -> dict[str, Any]:
        return {
            "type": "file",
            "path": self.path,
            "format": self.format,
            "hive_partitioning": self.hive_partitioning,
        }

    def relation(self, project: Path) -> str:
        """The DuckDB relation reading this source (paths are quoted as SQL strings)."""
        path = Path(self.path)
        if not path.is_absolute():
            path = project / path
        target = str(path)
        if path.is_dir():
            target = str(path / "**" / ("*.parquet" if self.format == "parquet" else "*.csv"))
        literal = "'" + target.replace("'", "''") + "'"
        if self.format == "csv":
            return f"read_csv({literal}, auto_detect = true)"
        hive = "true" if self.hive_partitioning else "false"
        return f"read_parquet({literal}, hive_partitioning = {hive})"


@dataclass(frozen=True)
class SqlSource:
    """Rows from a DuckDB SQL query (``SELECT ...``), e.g. over several files."""

    query: str

    def __post_init__(self) -> None:
        if not isinstance(self.query, str) or not self.query.strip():
            raise InvalidValueError("a SqlSource needs a non-empty query string")
        if ";" in self.query.strip().rstrip(";"):
            raise InvalidValueError("a SqlSource query must be one statement (no ';' inside)")

    def spec(self) -> dict[str, Any]:
        return {"type": "sql", "query": self.query}

    def relation(self, project: Path) -> str:
        return f"({self.query.strip().rstrip(';')})"


@dataclass(frozen=True)
class RequestSource:
    """Values that come with the request (online) or the entity frame (offline)."""

    name: str
    schema: Sequence[Field]

    def __post_init__(self) -> None:
        check_identifier(self.name, "request source name")
        object.__setattr__(self, "schema", tuple(self.schema))

    def spec(self) -> dict[str, Any]:
        return {"type": "request", "name": self.name, "schema": [f.spec() for f in self.schema]}


Source = FileSource | SqlSource


def _source_from_spec(spec: Mapping[str, Any]) -> Source:
    if spec["type"] == "file":
        return FileSource(
            spec["path"], spec.get("format", "parquet"), spec.get("hive_partitioning", False)
        )
    if spec["type"] == "sql":
        return SqlSource(spec["query"])
    raise InvalidValueError(f"unknown source type {spec['type']!r}")


@dataclass(frozen=True)
class FeatureView:
    """Features of one or more entities, read from a source with an event-time column."""

    name: str
    entities: Sequence[Entity]
    source: Source
    schema: Sequence[Field]
    timestamp_field: str = "event_timestamp"
    created_timestamp_field: str | None = None
    ttl: timedelta | None = None
    freshness: timedelta | None = None  # the newest row must be at most this old when checked
    validation: Literal["error", "warn", "off"] = "error"
    description: str = ""
    owner: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

    kind: Literal["feature_view"] = field(default="feature_view", init=False)

    def __post_init__(self) -> None:
        check_identifier(self.name, "feature view name")
        entities = (self.entities,) if isinstance(self.entities, Entity) else tuple(self.entities)
        if not entities or not all(isinstance(e, Entity) for e in entities):
            raise InvalidValueError(f"feature view {self.name!r} needs one or more Entity objects")
        object.__setattr__(self, "entities", entities)
        if not isinstance(self.source, FileSource | SqlSource):
            raise InvalidValueError(
                f"feature view {self.name!r}: source must be a FileSource or SqlSource"
            )
        schema = tuple(self.schema)
        if not schema or not all(isinstance(f, Field) for f in schema):
            raise InvalidValueError(f"feature view {self.name!r} needs a schema of Field objects")
        names = [f.name for f in schema]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise InvalidValueError(f"feature view {self.name!r} repeats fields {duplicated}")
        reserved = set(self.join_keys) | {self.timestamp_field}
        if self.created_timestamp_field:
            reserved.add(self.created_timestamp_field)
        clash = sorted(set(names) & reserved)
        if clash:
            raise InvalidValueError(
                f"feature view {self.name!r}: {clash} are keys or timestamps, not features"
            )
        object.__setattr__(self, "schema", schema)
        check_identifier(self.timestamp_field, f"timestamp field of {self.name!r}")
        if self.created_timestamp_field is not None:
            check_identifier(self.created_timestamp_field, f"created timestamp of {self.name!r}")
        _ttl(self.ttl, f"ttl of feature view {self.name!r}")
        _ttl(self.freshness, f"freshness of feature view {self.name!r}")
        if self.validation not in ("error", "warn", "off"):
            raise InvalidValueError(
                f"feature view {self.name!r}: validation must be 'error', 'warn' or 'off'"
            )
        object.__setattr__(self, "tags", _tags(self.tags, f"feature view {self.name!r}"))

    @property
    def join_keys(self) -> tuple[str, ...]:
        keys: list[str] = []
        for entity in self.entities:
            keys += [k for k in entity.join_keys if k not in keys]
        return tuple(keys)

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.schema)

    def field(self, name: str) -> Field:
        for candidate in self.schema:
            if candidate.name == name:
                return candidate
        raise InvalidValueError(
            f"feature view {self.name!r} has no feature {name!r}; it has {list(self.features)}"
        )

    def spec(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "entities": [e.name for e in self.entities],
            "source": self.source.spec(),
            "schema": [f.spec() for f in self.schema],
            "timestamp_field": self.timestamp_field,
            "created_timestamp_field": self.created_timestamp_field,
            "ttl_seconds": None if self.ttl is None else self.ttl.total_seconds(),
            "freshness_seconds": None if self.freshness is None else self.freshness.total_seconds(),
            "validation": self.validation,
            "description": self.description,
            "owner": self.owner,
            "tags": dict(self.tags),
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], entities: Mapping[str, Entity]) -> FeatureView:
        ttl, fresh = spec.get("ttl_seconds"), spec.get("freshness_seconds")
        return cls(
            name=spec["name"],
            entities=tuple(entities[name] for name in spec["entities"]),
            source=_source_from_spec(spec["source"]),
            schema=tuple(Field.from_spec(f) for f in spec["schema"]),
            timestamp_field=spec["timestamp_field"],
            created_timestamp_field=spec.get("created_timestamp_field"),
            ttl=None if ttl is None else timedelta(seconds=ttl),
            freshness=None if fresh is None else timedelta(seconds=fresh),
            validation=spec.get("validation", "error"),
            description=spec.get("description", ""),
            owner=spec.get("owner", ""),
            tags=spec.get("tags", {}),
        )


@dataclass(frozen=True)
class OnDemandFeatureView:
    """Features computed at read time by a Python function of request data and other features.

    The function takes a DataFrame (the request columns and the input features, named as in
    the result of a lookup) and returns a DataFrame with the ``schema`` columns. It is stored by
    import path, ``module:function``, and imported from the project when it runs.
    """

    name: str
    function: str  # "module:function"
    inputs: tuple[str, ...]  # "view:feature" references
    request: RequestSource | None
    schema: tuple[Field, ...]
    description: str = ""
    owner: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

    kind: Literal["on_demand_feature_view"] = field(default="on_demand_feature_view", init=False)
    # The decorated function, when defined with @on_demand_feature_view (never stored).
    udf: Callable[[Any], Any] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        check_identifier(self.name, "on-demand feature view name")
        if not isinstance(self.function, str) or not _FUNCTION.fullmatch(self.function):
            raise InvalidValueError(
                f"on-demand feature view {self.name!r}: function must be an import path "
                f"'module:function', not {self.function!r}"
            )
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "schema", tuple(self.schema))
        object.__setattr__(self, "tags", _tags(self.tags, f"feature view {self.name!r}"))
        if not self.schema:
            raise InvalidValueError(f"on-demand feature view {self.name!r} needs a schema")

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.schema)

    def spec(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "function": self.function,
            "inputs": list(self.inputs),
            "request": None if self.request is None else self.request.spec(),
            "schema": [f.spec() for f in self.schema],
            "description": self.description,
            "owner": self.owner,
            "tags": dict(self.tags),
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> OnDemandFeatureView:
        request = spec.get("request")
        return cls(
            name=spec["name"],
            function=spec["function"],
            inputs=tuple(spec["inputs"]),
            request=None
            if request is None
            else RequestSource(
                request["name"], tuple(Field.from_spec(f) for f in request["schema"])
            ),
            schema=tuple(Field.from_spec(f) for f in spec["schema"]),
            description=spec.get("description", ""),
            owner=spec.get("owner", ""),
            tags=spec.get("tags", {}),
        )

    def load_function(self) -> Callable[[Any], Any]:
        """Import the function by its path (from the project's code, never from the registry)."""
        import importlib

        module_name, _, attribute = self.function.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise InvalidValueError(
                f"on-demand feature view {self.name!r}: cannot import {module_name!r} ({error}); "
                "run from the project folder, or put the module on PYTHONPATH"
            ) from error
        function = getattr(module, attribute, None)
        if isinstance(function, OnDemandFeatureView):  # the decorator replaced the function
            function = function.udf
        if not callable(function):
            raise InvalidValueError(
                f"on-demand feature view {self.name!r}: {self.function!r} is not a function"
            )
        return function


def on_demand_feature_view(
    *,
    inputs: Sequence[str] = (),
    request: RequestSource | None = None,
    schema: Iterable[Field],
    name: str | None = None,
    description: str = "",
    owner: str = "",
    tags: Mapping[str, str] | None = None,
) -> Callable[[Callable[[Any], Any]], OnDemandFeatureView]:
    """Decorate a module-level function ``f(df) -> df`` to define an on-demand feature view."""

    def wrap(function: Callable[[Any], Any]) -> OnDemandFeatureView:
        module = getattr(function, "__module__", None)
        qualname = getattr(function, "__qualname__", "")
        if not module or module == "__main__" or "<locals>" in qualname or "." in qualname:
            raise InvalidValueError(
                f"on-demand feature view {qualname or function!r} must be a module-level function "
                "in an importable module (not __main__, not nested): it is imported by name"
            )
        if inspect.iscoroutinefunction(function):
            raise InvalidValueError("on-demand feature view functions must not be async")
        return OnDemandFeatureView(
            name=name or function.__name__,
            function=f"{module}:{qualname}",
            inputs=tuple(inputs),
            request=request,
            schema=tuple(schema),
            description=description or (inspect.getdoc(function) or "").split("\n")[0],
            owner=owner,
            tags=dict(tags or {}),
            udf=function,
        )

    return wrap


Definition = Entity | FeatureView | OnDemandFeatureView

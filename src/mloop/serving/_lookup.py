"""Entity-key requests: which features a model needs, read from its training lineage, and
the online lookup that fills them in.

A model trained on ``FeatureStore.get_historical_features`` output has lineage edges from its
run to the feature view versions it read (``feature_views/<name>/v<n>``, added by
``run.log_dataset``). The features it needs are the fields of those views that are also input
columns of its signature (``feature`` or, with full names, ``view__feature``). A request that
carries the views' join keys (and any request fields) instead of those columns is completed
from the online store before it is scored. Nothing is listed by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidInputError, NotFoundError
from mloop.serving._payload import Columns, PayloadError, row_count
from mloop.store import ModelVersion, Store

if TYPE_CHECKING:  # imported by the first entity-key request: a server without them starts faster
    from mloop.features import FeatureStore

__all__ = ["FeatureNeeds", "feature_needs", "look_up"]

_PREFIXES = {"feature_views/": "feature_view", "on_demand_feature_views/": "on_demand_feature_view"}


@dataclass(frozen=True)
class FeatureNeeds:
    """What an entity-key request must carry, and what the server fetches for it."""

    refs: tuple[str, ...]  # "view:feature", in signature order
    columns: tuple[str, ...]  # the signature column each ref fills
    join_keys: tuple[str, ...]
    request_fields: tuple[str, ...]  # on-demand views' request data, taken from the request
    full_names: bool
    nullable: frozenset[str]  # filled columns that may stay null when an entity is unknown
    views: tuple[str, ...]  # "name/v3", for the docs and /v2 metadata

    def wants_lookup(self, columns: Columns) -> bool:
        """True when ``columns`` lacks some feature columns and has every join key."""
        return any(c not in columns for c in self.columns) and all(
            k in columns for k in self.join_keys
        )


def _lineage_views(store: Store, run_id: str) -> list[tuple[str, str, int]]:
    """(kind, name, version) of the feature views the run read."""
    found: list[tuple[str, str, int]] = []
    for edge in store.list_lineage(run_id):
        if edge.direction != "input":
            continue
        for prefix, kind in _PREFIXES.items():
            if edge.name.startswith(prefix):
                name, _, version = edge.name[len(prefix) :].rpartition("/v")
                if name and version.isdecimal() and (kind, name, int(version)) not in found:
                    found.append((kind, name, int(version)))
        if edge.artifact.kind == "dataset":  # a dataset may name views its run did not link
            for item in edge.artifact.meta.get("feature_views") or []:
                if isinstance(item, dict) and {"name", "version"} <= item.keys():
                    key = (str(item.get("kind", "feature_view")), item["name"], item["version"])
                    if key not in found:
                        found.append(key)
    return found


def feature_needs(store: Store, version: ModelVersion) -> FeatureNeeds | None:
    """The features ``version`` reads from the feature store, or None if it reads none."""
    signature = version.meta.get("signature") or {}
    inputs = {c["name"]: c for c in signature.get("inputs") or [] if isinstance(c, dict)}
    if version.run_id is None or not inputs:
        return None
    try:
        views = _lineage_views(store, version.run_id)
    except NotFoundError:
        return None  # the run was purged: no lineage to read
    by_column: dict[str, tuple[str, bool]] = {}  # signature column -> (ref, full name?)
    join_keys: list[str] = []
    request_fields: list[str] = []
    shown: list[str] = []
    for kind, name, number in views:
        try:
            spec = store.features.get_definition(kind, name, number).spec
        except NotFoundError:
            continue
        used = False
        for field in spec.get("schema") or []:
            feature = field["name"]
            for column, full in ((feature, False), (f"{name}__{feature}", True)):
                if column in inputs and column not in by_column:
                    by_column[column] = (f"{name}:{feature}", full)
                    used = True
        if not used:
            continue
        shown.append(f"{name}/v{number}")
        if kind == "feature_view":
            _add_keys(store, spec, join_keys)
        else:
            for field in (spec.get("request") or {}).get("schema") or []:
                if field["name"] not in request_fields:
                    request_fields.append(field["name"])
            for ref in spec.get("inputs") or []:
                view = ref.partition(":")[0]
                try:
                    base = store.features.get_definition("feature_view", view).spec
                except NotFoundError:
                    continue
                _add_keys(store, base, join_keys)
    if not by_column or not join_keys:
        return None
    ordered = [c for c in inputs if c in by_column]
    fulls = {by_column[c][1] for c in ordered}
    if len(fulls) > 1:  # both forms in one signature: look up in the form most columns use
        full = sum(by_column[c][1] for c in ordered) * 2 > len(ordered)
        ordered = [c for c in ordered if by_column[c][1] == full]
    full_names = by_column[ordered[0]][1]
    return FeatureNeeds(
        refs=tuple(by_column[c][0] for c in ordered),
        columns=tuple(ordered),
        join_keys=tuple(join_keys),
        request_fields=tuple(f for f in request_fields if f not in join_keys),
        full_names=full_names,
        nullable=frozenset(c for c in ordered if inputs[c].get("nullable")),
        views=tuple(shown),
    )


def _add_keys(store: Store, view_spec: dict[str, Any], keys: list[str]) -> None:
    for entity in view_spec.get("entities") or []:
        try:
            spec = store.features.get_definition("entity", entity).spec
        except NotFoundError:
            continue
        keys += [k for k in spec.get("join_keys") or [] if k not in keys]


def look_up(features: FeatureStore, needs: FeatureNeeds, columns: Columns) -> Columns:
    """``columns`` with the model's features filled in from the online store.

    The join keys stay (the caller drops those the signature does not take). An entity
    that is not in the online store is a 404 naming its key,
    unless every feature column it leaves empty is nullable in the signature.
    """
    missing = [f for f in needs.request_fields if f not in columns]
    if missing:
        raise PayloadError(
            422,
            f"an entity-key request for this model needs request field(s) {missing} too "
            f"(on-demand features); it has {sorted(columns)}",
        )
    count = row_count(columns)
    rows = [{name: values[i] for name, values in columns.items()} for i in range(count)]
    for index, row in enumerate(rows):
        for key in needs.join_keys:
            value = row[key]
            if value is None or isinstance(value, dict | list | float | bool):
                raise PayloadError(
                    422,
                    f"row {index}: join key {key!r} must be an integer or a string, not {value!r}",
                )
    try:
        found = features.get_online_features(
            list(needs.refs), rows, full_feature_names=needs.full_names
        )
    except NotFoundError as error:
        raise PayloadError(
            503, f"the model's features cannot be read from the feature store: {error}"
        ) from error
    except InvalidInputError as error:
        raise PayloadError(422, f"feature lookup refused the request: {error}") from error
    result: Columns = dict(columns)
    for column in needs.columns:
        statuses = found.statuses.get(column, [])
        for index, status in enumerate(statuses):
            if status == "not_found" and column not in needs.nullable:
                keys = ", ".join(f"{k}={rows[index][k]!r}" for k in needs.join_keys)
                raise PayloadError(
                    404,
                    f"no features for {keys} in the online store (row {index}, feature "
                    f"{column!r}); check the key, or materialize the feature view",
                )
        result[column] = found.columns[column]
    return result

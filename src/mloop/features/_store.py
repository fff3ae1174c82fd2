"""``FeatureStore``: one object for definitions, training data, materialization and lookups."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop._util.project import project_on_path
from mloop.artifacts import ArtifactStore
from mloop.backends import backends
from mloop.config import Settings
from mloop.errors import InvalidValueError
from mloop.features._apply import Change, apply_definitions, plan_definitions
from mloop.features._defs import Definition, FeatureView, OnDemandFeatureView
from mloop.features._materialize import MaterializeResult, Progress, materialize_view, window_for
from mloop.features._offline import ViewQuery, point_in_time_join
from mloop.features._online import OnlineFeatures, check_rows, online_plan, read_online
from mloop.features._project import collect, load_definitions
from mloop.features._refs import (
    Applied,
    AppliedCache,
    Resolved,
    definitions_changed,
    load_applied,
    resolve,
)
from mloop.features.online import OnlineStore, open_online_store
from mloop.store import Store

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FeatureStore", "OnlineFeatures"]

LINEAGE_ATTR = "mloop.feature_views"


class FeatureStore:
    """The feature store of a project.

    store = FeatureStore()                       # this project, settings in force
    store.apply()                                # register features.py's definitions
    training = store.get_historical_features(entity_df, ["customer_stats:amount_7d"])
    store.materialize_incremental(datetime.now(UTC))
    store.get_online_features(["customer_stats:amount_7d"], [{"customer_id": 42}])

    Online lookups read the applied definitions from the metadata store at most once every
    ``definitions_ttl`` seconds (and at once after an ``apply`` in this process), so a lookup
    does not query it; another process's ``apply`` shows in lookups within that time. Training
    data and materialization always read them afresh.
    """

    def __init__(
        self,
        project: str | Path | None = None,
        *,
        online_store: str | None = None,
        store: Store | None = None,
        artifacts: ArtifactStore | None = None,
        settings: Settings | None = None,
        definitions_ttl: float = 1.0,
    ) -> None:
        self._backends = backends(store, artifacts, settings)
        self._applied = AppliedCache(self._backends.store, definitions_ttl)
        self.settings = self._backends.settings
        self.project = Path(project).resolve() if project is not None else self.settings.home
        self.online_uri = (
            online_store if online_store is not None else self.settings.resolved_online_store()
        )
        self._online: OnlineStore | None = None

    @property
    def store(self) -> Store:
        return self._backends.store

    @property
    def online(self) -> OnlineStore:
        """The online store (opened on first use)."""
        if self._online is None:
            self._online = open_online_store(self.online_uri)
        return self._online

    def close(self) -> None:
        if self._online is not None:
            self._online.close()
            self._online = None

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- definitions ------------------------------------------------------------------------

    def _definitions(self, definitions: Sequence[Any] | None) -> list[Definition]:
        if definitions is None:
            return load_definitions(self.project)
        return collect(list(definitions))

    def plan(self, definitions: Sequence[Any] | None = None) -> list[Change]:
        """What ``apply`` would change (definitions default to the project's features.py)."""
        return plan_definitions(self.store, self._definitions(definitions))

    def apply(
        self, definitions: Sequence[Any] | None = None, *, force: bool = False
    ) -> list[Change]:
        """Register the definitions (default: the project's features.py) as new versions where
        they changed; breaking changes that registered models use need ``force``."""
        try:
            return apply_definitions(
                self.store, self._definitions(definitions), actor=self.settings.user, force=force
            )
        finally:
            definitions_changed()  # also after a failure: some may have been written

    def applied(self) -> Applied:
        """Every applied definition (latest versions), read from the metadata store."""
        return load_applied(self.store)

    def feature_view(self, name: str) -> FeatureView:
        applied = self.applied()
        if name not in applied.views:
            raise InvalidValueError(
                f"no feature view {name!r} is applied; applied: {sorted(applied.views) or 'none'}"
            )
        return applied.views[name]

    # -- offline ----------------------------------------------------------------------------

    def get_historical_features(
        self,
        entity_df: pd.DataFrame,
        features: Sequence[str],
        *,
        full_feature_names: bool = False,
        timestamp_column: str = "event_timestamp",
    ) -> pd.DataFrame:
        """Point-in-time correct training data: for each entity row, each feature's latest value
        at or before the row's timestamp (within the view's ttl), or null. Every row comes back,
        in order. The result's ``attrs["mloop.feature_views"]`` names the view versions used, and
        ``run.log_dataset`` records them as the dataset's lineage."""
        import pandas as pd

        if not isinstance(entity_df, pd.DataFrame):
            raise InvalidValueError(
                f"entity_df must be a pandas DataFrame, not {type(entity_df).__name__}"
            )
        applied = self.applied()
        plan = resolve(applied, features, full_names=full_feature_names)
        queries = []
        for view_name, wanted in plan.by_view.items():
            view = applied.views[view_name]
            names = {(v, f): c for v, f, c in [*plan.outputs, *plan.hidden]}
            queries.append(
                ViewQuery(
                    name=view.name,
                    relation=view.source.relation(self.project),
                    join_keys=view.join_keys,
                    timestamp_field=view.timestamp_field,
                    created_timestamp_field=view.created_timestamp_field,
                    ttl=view.ttl,
                    features=tuple(wanted),
                    output_names=tuple(names[(view_name, f)] for f in wanted),
                )
            )
        result = point_in_time_join(entity_df, queries, timestamp_column=timestamp_column)
        if plan.on_demand:
            result = self._on_demand(result, plan, applied, offline=True)
        hidden = [c for _, _, c in plan.hidden]
        if hidden:
            result = result.drop(columns=hidden)
        used = [applied.records[("feature_view", v)] for v in plan.by_view]
        used += [applied.records[("on_demand_feature_view", o.name)] for o in plan.on_demand]
        result.attrs[LINEAGE_ATTR] = [
            {
                "kind": r.kind,
                "name": r.name,
                "version": r.version,
                "digest": r.digest,
                "artifact_id": r.artifact_id,
            }
            for r in used
        ]
        return result

    def _on_demand(
        self, frame: pd.DataFrame, plan: Resolved, applied: Applied, *, offline: bool
    ) -> pd.DataFrame:
        """Add each on-demand view's outputs, computed from its inputs and request fields."""
        import pandas as pd

        names = {(v, f): c for v, f, c in [*plan.outputs, *plan.hidden]}
        with project_on_path(self.project):
            for odfv in plan.on_demand:
                function = odfv.load_function()
                inputs: dict[str, Any] = {}
                for ref in odfv.inputs:
                    view, _, feature = ref.partition(":")
                    if feature in inputs:
                        raise InvalidValueError(
                            f"on-demand feature view {odfv.name!r} reads two features named "
                            f"{feature!r}; rename one"
                        )
                    inputs[feature] = frame[names[(view, feature)]]
                for field in odfv.request.schema if odfv.request is not None else ():
                    if field.name not in frame.columns:
                        where = "the entity frame" if offline else "the entity rows"
                        raise InvalidValueError(
                            f"on-demand feature view {odfv.name!r} needs request field "
                            f"{field.name!r}, which {where} lack"
                        )
                    inputs[field.name] = frame[field.name]
                given = pd.DataFrame(inputs, index=frame.index)
                try:
                    computed = function(given)
                except Exception as error:
                    raise InvalidValueError(
                        f"on-demand feature view {odfv.name!r} ({odfv.function}) failed: "
                        f"{type(error).__name__}: {error}"
                    ) from error
                if not isinstance(computed, pd.DataFrame) or len(computed) != len(frame):
                    raise InvalidValueError(
                        f"on-demand feature view {odfv.name!r} must return a DataFrame with one "
                        "row per input row"
                    )
                for feature in odfv.features:
                    if feature not in computed.columns:
                        raise InvalidValueError(
                            f"on-demand feature view {odfv.name!r} returned no column {feature!r}"
                        )
                    if (odfv.name, feature) in names:
                        frame[names[(odfv.name, feature)]] = computed[feature].to_numpy()
        return frame

    # -- materialization --------------------------------------------------------------------

    def _views(self, views: Sequence[str] | None) -> list[tuple[FeatureView, int]]:
        applied = self.applied()
        names = list(views) if views is not None else sorted(applied.views)
        chosen = []
        for name in names:
            if name not in applied.views:
                raise InvalidValueError(
                    f"no feature view {name!r} is applied; applied: {sorted(applied.views)}"
                )
            chosen.append((applied.views[name], applied.records[("feature_view", name)].version))
        return chosen

    def materialize(
        self,
        start: datetime | str | None,
        end: datetime | str,
        *,
        views: Sequence[str] | None = None,
        progress: Progress | None = None,
    ) -> list[MaterializeResult]:
        """Write each view's latest values in ``[start, end]`` (``start`` None: all history) to
        the online store, atomically per view."""
        first = None if start is None else window_for(start, "start")
        last = window_for(end, "end")
        return [
            self._materialize(view, version, first, last, progress)
            for view, version in self._views(views)
        ]

    def materialize_incremental(
        self,
        end: datetime | str | None = None,
        *,
        views: Sequence[str] | None = None,
        progress: Progress | None = None,
    ) -> list[MaterializeResult]:
        """Materialize what arrived since each view's last finished materialization into this
        online store, up to ``end`` (default: now)."""
        last = window_for(end if end is not None else datetime.now(UTC), "end")
        results = []
        for view, version in self._views(views):
            previous = self.store.features.last_materialization(view.name, self._shown_uri())
            start = None if previous is None else previous.end
            if start is not None and start >= last:
                continue
            results.append(self._materialize(view, version, start, last, progress))
        return results

    def _materialize(
        self,
        view: FeatureView,
        version: int,
        start: datetime | None,
        end: datetime,
        progress: Progress | None,
    ) -> MaterializeResult:
        return materialize_view(
            view,
            version,
            project=self.project,
            store=self.store,
            online=self.online,
            online_uri=self._shown_uri(),
            start=start,
            end=end,
            actor=self.settings.user,
            progress=progress,
        )

    def _shown_uri(self) -> str:
        from mloop.store._engine import normalize_uri  # password-free form for the record

        uri = self.online_uri
        if "://" in uri and "@" in uri.split("://", 1)[1]:
            scheme, rest = uri.split("://", 1)
            return f"{scheme}://***@{rest.split('@', 1)[1]}"
        return normalize_uri(uri) if uri.startswith("sqlite") else uri

    # -- online -----------------------------------------------------------------------------

    def get_online_features(
        self,
        features: Sequence[str],
        entity_rows: Sequence[Mapping[str, Any]],
        *,
        full_feature_names: bool = False,
    ) -> OnlineFeatures:
        """The materialized values of ``features`` for each entity row (one round trip per
        view); a missing entity gives nulls and status ``not_found``. Fields of the rows that
        are not keys are passed to on-demand views as request data."""
        rows = check_rows(entity_rows)
        applied = self._applied.get()  # cached, see definitions_ttl
        lookup = online_plan(applied, features, full_names=full_feature_names)
        columns, statuses = read_online(self.online, lookup, rows)
        plan = lookup.resolved
        if plan.on_demand:
            names = {(v, f): c for v, f, c in [*plan.outputs, *plan.hidden]}
            import pandas as pd

            frame = pd.DataFrame(
                {
                    **{k: [r.get(k) for r in rows] for k in _request_fields(plan.on_demand, rows)},
                    **columns,
                }
            )
            frame = self._on_demand(frame, plan, applied, offline=False)
            for odfv in plan.on_demand:
                for feature in odfv.features:
                    computed = names.get((odfv.name, feature))
                    if computed is not None:
                        values = [None if _missing(v) else v for v in frame[computed].tolist()]
                        columns[computed] = values
                        statuses[computed] = [
                            "null_value" if v is None else "present" for v in values
                        ]
        if len(rows) == 1:
            row = rows[0]
            ordered = {k: [row[k]] for k in lookup.key_names}
        else:
            ordered = {k: [r[k] for r in rows] for k in lookup.key_names}
        for column in lookup.outputs:
            ordered[column] = columns[column]
        if not lookup.in_order:  # request order, without on-demand inputs not asked for
            statuses = {column: statuses[column] for column in lookup.outputs}
        return OnlineFeatures(ordered, statuses)


def _request_fields(
    on_demand: Sequence[OnDemandFeatureView], rows: Sequence[Mapping[str, Any]]
) -> list[str]:
    fields: list[str] = []
    for odfv in on_demand:
        for field in odfv.request.schema if odfv.request is not None else ():
            if field.name not in fields:
                fields.append(field.name)
    return fields


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)

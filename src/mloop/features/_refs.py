"""Feature references (``view:feature``) resolved against the applied definitions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mloop.errors import InvalidValueError, NotFoundError
from mloop.features._defs import Entity, FeatureView, OnDemandFeatureView
from mloop.store import FeatureDefinition, Store

__all__ = ["Applied", "Resolved", "load_applied", "resolve"]


@dataclass
class Applied:
    """The latest applied version of every definition, rebuilt from the store."""

    entities: dict[str, Entity] = field(default_factory=dict)
    views: dict[str, FeatureView] = field(default_factory=dict)
    on_demand: dict[str, OnDemandFeatureView] = field(default_factory=dict)
    records: dict[tuple[str, str], FeatureDefinition] = field(default_factory=dict)


def load_applied(store: Store) -> Applied:
    """Every applied definition, as objects."""
    applied = Applied()
    records = store.features.list_definitions()
    for record in records:
        applied.records[(record.kind, record.name)] = record
    for record in records:
        if record.kind == "entity":
            applied.entities[record.name] = Entity.from_spec(record.spec)
    for record in records:
        if record.kind == "feature_view":
            applied.views[record.name] = FeatureView.from_spec(record.spec, applied.entities)
        elif record.kind == "on_demand_feature_view":
            applied.on_demand[record.name] = OnDemandFeatureView.from_spec(record.spec)
    return applied


@dataclass(frozen=True)
class Resolved:
    """What a list of references asks for: base features per view (including the inputs of
    on-demand views), the on-demand views, and the output column of each reference."""

    by_view: dict[str, list[str]]
    on_demand: list[OnDemandFeatureView]
    outputs: list[tuple[str, str, str]]  # (view, feature, output column), in request order
    hidden: list[tuple[str, str, str]]  # on-demand inputs fetched but not asked for


def _split(ref: object) -> tuple[str, str]:
    if not isinstance(ref, str) or ref.count(":") != 1:
        raise InvalidValueError(
            f"feature reference {ref!r} must look like 'view:feature', "
            "e.g. 'customer_stats:amount_7d'"
        )
    view, _, feature = ref.partition(":")
    return view, feature


def resolve(applied: Applied, refs: Sequence[str], *, full_names: bool) -> Resolved:
    """Check every reference names an applied feature; plan what to fetch."""
    if isinstance(refs, str) or not refs:
        raise InvalidValueError("features must be a non-empty list of 'view:feature' references")

    def column(view: str, feature: str) -> str:
        return f"{view}__{feature}" if full_names else feature

    by_view: dict[str, list[str]] = {}
    outputs: list[tuple[str, str, str]] = []
    on_demand: dict[str, OnDemandFeatureView] = {}
    for ref in refs:
        view, feature = _split(ref)
        if any((v, f) == (view, feature) for v, f, _ in outputs):
            continue  # asked twice: one column
        if view in applied.views:
            applied.views[view].field(feature)  # raises, naming the view's features
            by_view.setdefault(view, [])
            if feature not in by_view[view]:
                by_view[view].append(feature)
        elif view in applied.on_demand:
            odfv = applied.on_demand[view]
            if feature not in odfv.features:
                raise InvalidValueError(
                    f"on-demand feature view {view!r} has no feature {feature!r}; "
                    f"it has {list(odfv.features)}"
                )
            on_demand[view] = odfv
        else:
            known = sorted(applied.views) + sorted(applied.on_demand)
            raise NotFoundError(
                f"no feature view {view!r} (in {ref!r}); applied views: {known or 'none'} - "
                "`mloop apply` registers the definitions in features.py"
            )
        outputs.append((view, feature, column(view, feature)))
    hidden = []
    asked = {(v, f) for v, f, _ in outputs}
    for odfv in on_demand.values():
        for ref in odfv.inputs:
            view, feature = _split(ref)
            if view not in applied.views:
                raise NotFoundError(
                    f"on-demand feature view {odfv.name!r} reads {ref!r}, but no feature view "
                    f"{view!r} is applied"
                )
            applied.views[view].field(feature)
            if feature not in by_view.setdefault(view, []):
                by_view[view].append(feature)
            if (view, feature) not in asked:
                hidden.append((view, feature, column(view, feature)))
    names = [c for _, _, c in outputs] + [c for _, _, c in hidden]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise InvalidValueError(
            f"features {duplicated} come from more than one view; ask with full_feature_names="
            "True to name them view__feature"
        )
    return Resolved(by_view, list(on_demand.values()), outputs, hidden)

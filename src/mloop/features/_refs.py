"""Feature references (``view:feature``) resolved against the applied definitions.

Reading the applied definitions is a query of the metadata store and a rebuild of every
definition object (about 0.6 ms with SQLite), too slow for an online lookup, so a
:class:`AppliedCache` keeps them: it reads the store again when its ``ttl`` has passed, or at
once after an ``apply`` in this process. Another process's ``apply`` shows within ``ttl``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mloop.errors import InvalidValueError, NotFoundError
from mloop.features._defs import Entity, FeatureView, OnDemandFeatureView
from mloop.store import FeatureDefinition, Store

__all__ = ["Applied", "AppliedCache", "Resolved", "definitions_changed", "load_applied", "resolve"]

# Bumped by every apply in this process: every AppliedCache reads the store again.
_generation = 0
_generation_lock = threading.Lock()


def definitions_changed() -> None:
    """Tell this process's caches that definitions were applied (call after writing them)."""
    global _generation
    with _generation_lock:
        _generation += 1


@dataclass
class Applied:
    """The latest applied version of every definition, rebuilt from the store."""

    entities: dict[str, Entity] = field(default_factory=dict)
    views: dict[str, FeatureView] = field(default_factory=dict)
    on_demand: dict[str, OnDemandFeatureView] = field(default_factory=dict)
    records: dict[tuple[str, str], FeatureDefinition] = field(default_factory=dict)
    # What callers derive from these definitions (read plans), dropped with them.
    derived: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    def identity(self) -> frozenset[tuple[str, str, int, str]]:
        """(kind, name, version, digest) of every record: equal when nothing changed."""
        return frozenset((r.kind, r.name, r.version, r.digest) for r in self.records.values())


class AppliedCache:
    """The applied definitions of one metadata store, read again when ``ttl`` seconds have
    passed since the last read, or after an ``apply`` in this process.

    When a read finds the same versions, the cached objects (and what was derived from them)
    are kept. ``ttl=0`` reads the store on every call.
    """

    def __init__(
        self,
        store: Store,
        ttl: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not ttl >= 0:
            raise InvalidValueError(
                f"definitions_ttl must be a number of seconds >= 0, not {ttl!r}"
            )
        self._store = store
        self._ttl = float(ttl)
        self._clock = clock
        self._applied: Applied | None = None
        self._expires = 0.0
        self._generation = -1
        self._lock = threading.Lock()

    def get(self) -> Applied:
        applied = self._applied
        if (
            applied is not None
            and self._generation == _generation
            and self._clock() < self._expires
        ):
            return applied
        with self._lock:
            generation = _generation  # read first: an apply during the read reads again later
            fresh = load_applied(self._store)
            if applied is not None and applied.identity() == fresh.identity():
                fresh = applied
            self._applied = fresh
            self._generation = generation
            self._expires = self._clock() + self._ttl
            return fresh


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

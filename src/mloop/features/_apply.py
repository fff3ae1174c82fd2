"""``apply``: register definitions as versions, after showing what changes (a plan).

A definition whose canonical spec is unchanged keeps its version; a changed one gets the next.
Changes that can break readers are named: a field removed, a field's type changed, a join key
changed. They are refused when a registered model's signature uses the field (its training
data came through it), unless forced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from mloop.errors import ConflictError
from mloop.features._defs import Definition, spec_digest
from mloop.store import Store

__all__ = ["Change", "apply_definitions", "plan_definitions"]

Action = Literal["create", "update", "unchanged"]


@dataclass(frozen=True)
class Change:
    """What applying one definition does."""

    kind: str
    name: str
    action: Action
    old_version: int | None
    new_version: int | None  # None until applied, for creates and updates
    details: list[str] = field(default_factory=list)  # one line per difference
    breaking: list[str] = field(default_factory=list)
    blocked_by: list[str] = field(default_factory=list)  # model versions that use a broken field


def _fields(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in spec.get("schema", [])}


def _differences(old: dict[str, Any], new: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Human lines for what differs, and the subset that can break readers."""
    details: list[str] = []
    breaking: list[str] = []
    old_fields, new_fields = _fields(old), _fields(new)
    for name in sorted(set(new_fields) - set(old_fields)):
        details.append(f"+ field {name}: {new_fields[name]['dtype']}")
    for name in sorted(set(old_fields) - set(new_fields)):
        line = f"- field {name}: {old_fields[name]['dtype']}"
        details.append(line)
        breaking.append(name)
    for name in sorted(set(old_fields) & set(new_fields)):
        before, after = old_fields[name], new_fields[name]
        if before["dtype"] != after["dtype"]:
            details.append(f"~ field {name}: {before['dtype']} → {after['dtype']}")
            breaking.append(name)
        elif before != after:
            details.append(f"~ field {name}: description or constraint changed")
    for key in sorted((set(old) | set(new)) - {"schema"}):
        if old.get(key) != new.get(key):
            details.append(f"~ {key}: {old.get(key)!r} → {new.get(key)!r}")
            if key in ("join_keys", "entities", "timestamp_field"):
                breaking.append(f"<{key}>")
    return details, breaking


def _models_using(store: Store, columns: list[str], view: str) -> list[str]:
    """Registered model versions whose signature takes one of ``columns`` (as the bare field
    name or ``view__field``)."""
    wanted = set(columns) | {f"{view}__{c}" for c in columns}
    users = []
    for model in store.models.list_models():
        for version in store.models.list_versions(model.name):
            signature = version.meta.get("signature") or {}
            names = {column.get("name") for column in signature.get("inputs", [])}
            used = sorted(wanted & names)
            if used:
                users.append(f"{version.ref} (uses {', '.join(used)})")
    return users


def plan_definitions(store: Store, definitions: Sequence[Definition]) -> list[Change]:
    """What ``apply_definitions`` would do, without writing anything."""
    current = {(d.kind, d.name): d for d in store.features.list_definitions()}
    changes = []
    for definition in definitions:
        spec = definition.spec()
        existing = current.get((definition.kind, definition.name))
        if existing is None:
            changes.append(Change(definition.kind, definition.name, "create", None, None))
            continue
        if existing.digest == spec_digest(spec):
            changes.append(
                Change(
                    definition.kind,
                    definition.name,
                    "unchanged",
                    existing.version,
                    existing.version,
                )
            )
            continue
        details, breaking = _differences(existing.spec, spec)
        fields = [name for name in breaking if not name.startswith("<")]
        blocked = _models_using(store, fields, definition.name) if fields else []
        changes.append(
            Change(
                definition.kind,
                definition.name,
                "update",
                existing.version,
                None,
                details,
                breaking,
                blocked,
            )
        )
    return changes


def apply_definitions(
    store: Store, definitions: Sequence[Definition], *, actor: str, force: bool = False
) -> list[Change]:
    """Register every definition that changed; refuse (ConflictError) breaking changes that a
    registered model depends on unless ``force``."""
    changes = plan_definitions(store, definitions)
    blocked = [change for change in changes if change.blocked_by]
    if blocked and not force:
        lines = [
            f"{c.kind.replace('_', ' ')} {c.name}: {', '.join(c.breaking)} used by "
            + "; ".join(c.blocked_by)
            for c in blocked
        ]
        raise ConflictError(
            "refusing breaking changes that registered models depend on:\n  "
            + "\n  ".join(lines)
            + "\nretrain and register those models first, or apply with --force"
        )
    applied = []
    by_key: dict[tuple[str, str], Definition] = {(d.kind, d.name): d for d in definitions}
    for change in changes:
        if change.action == "unchanged":
            applied.append(change)
            continue
        definition = by_key[(change.kind, change.name)]
        spec = definition.spec()
        record, _ = store.features.put_definition(
            definition.kind, definition.name, spec, spec_digest(spec), actor=actor
        )
        applied.append(
            Change(
                change.kind,
                change.name,
                change.action,
                change.old_version,
                record.version,
                change.details,
                change.breaking,
                change.blocked_by,
            )
        )
    return applied

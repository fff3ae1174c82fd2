"""Reading and curating the registry: models, versions, tags and aliases."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mloop.backends import backends
from mloop.config import Settings
from mloop.errors import InvalidValueError
from mloop.events import deliver_soon
from mloop.registry._load import resolve_version
from mloop.registry._refs import parse_ref
from mloop.store import AliasChange, ModelVersion, RegisteredModel, Store

__all__ = [
    "delete_alias",
    "get_model",
    "get_version",
    "list_models",
    "list_versions",
    "set_alias",
    "set_model_tags",
    "set_version_tags",
    "update_model",
]


def get_model(
    name: str, *, store: Store | None = None, settings: Settings | None = None
) -> RegisteredModel:
    """The registered model ``name`` with its tags and aliases."""
    return backends(store, None, settings, create=False).store.models.get_model(name)


def list_models(
    *, name_like: str | None = None, store: Store | None = None, settings: Settings | None = None
) -> list[RegisteredModel]:
    """Every registered model by name (``name_like``: a SQL LIKE pattern)."""
    return backends(store, None, settings, create=False).store.models.list_models(
        name_like=name_like
    )


def get_version(
    ref: str, *, store: Store | None = None, settings: Settings | None = None
) -> ModelVersion:
    """The version ``ref`` names: ``churn/3``, ``churn@production``, ``models:/churn@latest``."""
    parsed = parse_ref(ref)
    if parsed.name is None:
        raise InvalidValueError(
            f"{ref!r} is not a registered model version; use 'name/3' or 'name@alias'"
        )
    return resolve_version(backends(store, None, settings, create=False).store, parsed)


def list_versions(
    name: str, *, store: Store | None = None, settings: Settings | None = None
) -> list[ModelVersion]:
    """The versions of ``name``, newest first."""
    return backends(store, None, settings, create=False).store.models.list_versions(name)


def set_alias(
    name: str,
    alias: str,
    version: int,
    *,
    actor: str | None = None,
    store: Store | None = None,
    settings: Settings | None = None,
) -> AliasChange:
    """Point ``alias`` of ``name`` at ``version``, atomically; the audit log records who moved
    it and from which version, and a ``model_alias.changed`` event goes to webhooks."""
    b = backends(store, None, settings, create=False)  # no store, no model to alias
    change = b.store.models.set_alias(name, alias, version, actor=actor or b.settings.user)
    deliver_soon(b.store)
    return change


def delete_alias(
    name: str,
    alias: str,
    *,
    actor: str | None = None,
    store: Store | None = None,
    settings: Settings | None = None,
) -> AliasChange:
    """Remove ``alias`` from ``name``."""
    b = backends(store, None, settings, create=False)
    change = b.store.models.delete_alias(name, alias, actor=actor or b.settings.user)
    deliver_soon(b.store)
    return change


def update_model(
    name: str,
    *,
    description: str,
    actor: str | None = None,
    store: Store | None = None,
    settings: Settings | None = None,
) -> RegisteredModel:
    """Replace the description of ``name``."""
    b = backends(store, None, settings)
    return b.store.models.update_model(
        name, description=description, actor=actor or b.settings.user
    )


def set_model_tags(
    name: str,
    tags: Mapping[str, Any],
    *,
    store: Store | None = None,
    settings: Settings | None = None,
) -> None:
    """Set tags on a registered model."""
    backends(store, None, settings).store.models.set_model_tags(name, tags)


def set_version_tags(
    ref: str,
    tags: Mapping[str, Any],
    *,
    store: Store | None = None,
    settings: Settings | None = None,
) -> None:
    """Set tags on the version ``ref`` names (``churn/3``, ``churn@production``)."""
    version = get_version(ref, store=store, settings=settings)
    backends(store, None, settings).store.models.set_version_tags(
        version.name, version.version, tags
    )

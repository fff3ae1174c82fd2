"""Online stores: the latest feature values per entity, for serving.

    >>> from mloop.features.online import open_online_store
    >>> store = open_online_store("redis://127.0.0.1:6379/0")  # doctest: +SKIP
    >>> store.read("customer", [(42,)], ["spend", "tier"]).values  # doctest: +SKIP
    [[0.5, 'gold']]

SQLite (the default, one file in the project) and Redis share the record encoding described
in ``_codec``; importing this package does not import redis.
"""

from __future__ import annotations

from mloop.config import load_settings
from mloop.errors import ConfigError

from ._base import EntityKey, OnlineRead, OnlineStore, Status
from ._codec import Batch, pack_arrow, pack_records
from ._redis import RedisOnlineStore
from ._sqlite import SqliteOnlineStore

__all__ = [
    "Batch",
    "EntityKey",
    "OnlineRead",
    "OnlineStore",
    "RedisOnlineStore",
    "SqliteOnlineStore",
    "Status",
    "open_online_store",
    "pack_arrow",
    "pack_records",
]

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def open_online_store(uri: str) -> OnlineStore:
    """The online store a URI names.

    - ``""``: the project's online store (the ``online_store`` setting; by default SQLite in
      ``<home>/.mloop/online.db``)
    - ``sqlite:///path/online.db`` or a plain path: SQLite in that file
    - ``redis://host:6379/0``, ``rediss://...`` (TLS), ``unix:///path/redis.sock``: Redis
    """
    if uri == "":
        uri = load_settings().resolved_online_store()
    if uri.lower().startswith(_REDIS_SCHEMES):
        return RedisOnlineStore(uri)
    scheme, separator, _ = uri.partition("://")
    if uri.startswith("sqlite://") or not separator:
        return SqliteOnlineStore(uri)
    raise ConfigError(
        f"online store URI {uri!r}: {scheme!r} is not an online store; use sqlite:///path.db, "
        "a file path, redis://host:6379/0, rediss://host:6380/0 or unix:///path/redis.sock "
        "(empty: the project's online_store setting)"
    )

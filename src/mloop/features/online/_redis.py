r"""The Redis online store: one string per entity record; a batch is written by one Lua script.

Keys and values (the entity key and feature names are the JSON of ``_codec``, the values its
MessagePack array)::

    {namespace}:{view}:{entity key}  ->  b"{event ms, 17 wide}\n{layout id}\n{values}"
    mloop:customer:[42]              ->  b'00001714557600000\n5d2e6b5cbd0ab5e8\n\x92\xcb?\xe0...'
    {namespace}:layouts              ->  hash of layout id -> feature names
    mloop:layouts                    ->  {'5d2e6b5cbd0ab5e8': '["spend","tier"]'}

``%`` and ``:`` in a view name are written ``%25`` and ``%3A``, so the view part of a key never
holds a ``:`` and one view's keys never match another view's prefix. The event time has a fixed
width so the script reads it with ``string.sub``, 40% faster than a pattern.

A read of N keys is one ``MGET``. A write is one ``EVALSHA`` of ``_UPSERT_NEWER`` over the
whole batch. Redis runs a script to its end without serving anyone else, so a reader sees all
of a batch or none of it. The script reads every key before it sets any and sets only those
whose stored event time is not newer; the one error it can meet after it starts, the server
being out of memory, Redis reports at a script's first write, before anything is written.

Why not MULTI/EXEC with one script call per chunk of the batch: measured with 100,000 records
of 10 features, both hold the server for the same time (about 0.3-0.5 s here, while a GET from
another client waits as long), because EXEC too runs its queued commands back to back; and
Redis does not roll back a transaction, so a later chunk failing would leave the earlier ones
written. Chunks without MULTI would hold the server 10x shorter, but readers would see half a
batch. (WATCH + MULTI, checking event times in the client, is no way out either: WATCH of
100,000 keys took Redis 7.0 over a minute.) So a write holds Redis for about 4 µs a record:
materialize in batches of at most a few hundred thousand records when readers must not wait
longer than that. Redis Cluster is not supported (a batch spans hash slots).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from mloop.errors import (
    ConfigError,
    InvalidKeyError,
    MissingExtraError,
    StoreError,
    StoreUnavailableError,
)

from ._base import EntityKey, OnlineRead
from ._codec import Batch, Reader, Record, check_view, empty_read, encode_key, pack_records

if TYPE_CHECKING:
    import redis

__all__ = ["RedisOnlineStore"]

# KEYS[1]: the layouts hash; KEYS[2..]: the record keys. ARGV[1], ARGV[2]: the batch's layout
# id and feature names; ARGV[3..]: the records, each opening with its event time in 17
# characters. Reads every key before writing any. MGET and MSET of 1,000 keys at a time (unpack()
# has a stack limit) take half the time of a GET and a SET per key.
_UPSERT_NEWER = """
local n = #KEYS - 1
local keep = {}
for first = 1, n, 1000 do
  local last = math.min(first + 999, n)
  local stored = redis.call('MGET', unpack(KEYS, first + 1, last + 1))
  for i = first, last do
    local old = stored[i - first + 1]
    old = old and tonumber(string.sub(old, 1, 17))
    keep[i] = (not old) or old <= tonumber(string.sub(ARGV[i + 2], 1, 17))
  end
end
local written, batch, size = 0, {}, 0
for i = 1, n do
  if keep[i] then
    if written == 0 then
      redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
    end
    batch[size + 1] = KEYS[i + 1]
    batch[size + 2] = ARGV[i + 2]
    size = size + 2
    written = written + 1
  end
  if size >= 2000 or (i == n and size > 0) then
    redis.call('MSET', unpack(batch, 1, size))
    batch, size = {}, 0
  end
end
return written
"""

_DROP_BATCH = 1000


class RedisOnlineStore:
    """The online store in Redis (``redis://``, ``rediss://`` or ``unix://`` URL).

    ``timeout`` bounds connecting and every read, so a server that is down fails fast;
    ``write_timeout`` bounds a write, which may run for a while on a big batch.

    >>> store = RedisOnlineStore("redis://127.0.0.1:6379/0")  # doctest: +SKIP
    >>> store.read("customer", [(42,)], ["tier"]).values  # doctest: +SKIP
    [['gold']]
    """

    def __init__(
        self,
        url: str,
        namespace: str = "mloop",
        *,
        timeout: float = 2.0,
        write_timeout: float = 60.0,
    ) -> None:
        try:
            import redis
            from redis.backoff import ExponentialBackoff
            from redis.retry import Retry
        except ImportError:
            raise MissingExtraError("redis", "redis", "the Redis online store") from None
        if not isinstance(namespace, str) or not namespace or not namespace.isprintable():
            raise InvalidKeyError(
                f"Redis namespace {namespace!r:.80} is not acceptable: use a non-empty string "
                "of printable characters, like 'mloop' or 'churn-prod'"
            )
        self.uri = url
        self.namespace = namespace
        self._errors = redis.exceptions

        def client(socket_timeout: float) -> redis.Redis:
            # A few quick retries ride over a restart; the default (10, up to 10 s) would make
            # an unreachable server take a minute to report.
            return redis.Redis.from_url(
                url,
                socket_timeout=socket_timeout,
                socket_connect_timeout=timeout,
                retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), retries=2),
            )

        try:
            self._client = client(timeout)
            self._writer = client(write_timeout)
        except ValueError as error:
            raise ConfigError(
                f"{_redacted(url)} is not a Redis URL ({error}); use redis://host:6379/0, "
                "rediss://host:6380/0 or unix:///path/to/redis.sock"
            ) from error
        self._upsert = self._writer.register_script(_UPSERT_NEWER)
        self._layouts_key = f"{namespace}:layouts"
        self._reader = Reader(self._load_layout)
        self._prefixes: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"RedisOnlineStore({_redacted(self.uri)!r}, namespace={self.namespace!r})"

    def write(
        self,
        view: str,
        keys: Sequence[EntityKey],
        values: Sequence[Sequence[Any]],
        features: Sequence[str],
        event_times_ms: Sequence[int],
    ) -> int:
        """Upsert one record per key in one script call; returns how many records were stored.

        A record older than the stored one is skipped (and not counted); an equal event time
        replaces it.
        """
        return self.write_batch(pack_records(view, keys, values, features, event_times_ms))

    def write_batch(self, batch: Batch) -> int:
        """Write a batch made by ``pack_records`` or ``pack_arrow``, like ``write``."""
        view, layout, packed = batch
        if not packed:
            return 0
        prefix = self._prefix(view)
        redis_keys = [self._layouts_key, *[prefix + key for key, _, _ in packed]]
        head = f"\n{layout.id}\n".encode("ascii")
        records = [b"%017d%b%b" % (event_ms, head, data) for _, event_ms, data in packed]
        try:
            return int(self._upsert(keys=redis_keys, args=[*layout, *records]))
        except self._errors.RedisError as error:
            doing = f"writing {len(packed)} records to view {view!r}"
            raise self._translated(error, doing) from error

    def read(self, view: str, keys: Sequence[EntityKey], features: Sequence[str]) -> OnlineRead:
        """The stored values of ``features`` for each key, in ``keys`` order, in one MGET."""
        prefix = self._prefixes.get(view) if type(view) is str else None
        if prefix is None:
            prefix = self._prefix(check_view(view))
        names = self._reader.checked(features)
        encoded = [encode_key(key) for key in keys]
        if not encoded:
            return empty_read()
        unique = list(dict.fromkeys(encoded)) if len(encoded) > 1 else encoded
        try:
            # Not mget(): its argument wrappers add 4 µs to a 45 µs round trip.
            stored: list[bytes | None] = self._client.execute_command(  # type: ignore[no-untyped-call]
                "MGET", *[prefix + key for key in unique]
            )
        except self._errors.RedisError as error:
            raise self._translated(error, f"reading view {view!r}") from error
        found: dict[str, Record] = {}
        for key, raw in zip(unique, stored, strict=True):
            if raw is not None:
                found[key] = self._record(key, raw, prefix)
        return self._reader.build(encoded, found, names)

    def drop_view(self, view: str) -> None:
        """Forget every record of ``view`` (SCAN + UNLINK: readers may see it half dropped).

        Layouts stay: views share them, and they are a few bytes each.
        """
        pattern = _glob_escape(self._prefix(check_view(view))) + "[[]*"
        batch: list[bytes] = []
        try:
            for key in self._writer.scan_iter(match=pattern, count=_DROP_BATCH):
                batch.append(key)
                if len(batch) >= _DROP_BATCH:
                    self._writer.unlink(*batch)
                    batch = []
            if batch:
                self._writer.unlink(*batch)
        except self._errors.RedisError as error:
            raise self._translated(error, f"dropping view {view!r}") from error

    def close(self) -> None:
        """Close the connections to Redis."""
        self._client.close()
        self._writer.close()

    def _record(self, key: str, raw: bytes, prefix: str) -> Record:
        try:
            if raw[17] == raw[34] == 10:  # b"\n"
                values = raw[35:]
                # mloop 0.1 wrote the values as JSON text, which always opens with "["
                stored = values.decode("utf-8") if values[:1] == b"[" else values
                return (key, int(raw[:17]), raw[18:34].decode("ascii"), stored)
        except (IndexError, ValueError):
            pass
        raise StoreError(
            f"Redis key {prefix + key!r} of the online store at {_redacted(self.uri)} holds "
            f"{raw[:40]!r}, not an mloop record; something else writes under the namespace "
            f"{self.namespace!r}: give mloop a namespace of its own"
        )

    def _load_layout(self, layout: str) -> str | None:
        try:
            names = self._client.hget(self._layouts_key, layout)
        except self._errors.RedisError as error:
            raise self._translated(error, f"reading layout {layout}") from error
        if names is None:
            return None
        return names if isinstance(names, str) else names.decode()

    def _prefix(self, view: str) -> str:
        prefix = self._prefixes.get(view)
        if prefix is None:
            part = view.replace("%", "%25").replace(":", "%3A")
            prefix = f"{self.namespace}:{part}:"
            if len(self._prefixes) > 10_000:
                self._prefixes.clear()
            self._prefixes[view] = prefix
        return prefix

    def _translated(self, error: Exception, doing: str) -> StoreError:
        """redis-py's error as mloop's, naming the server (without its password)."""
        if isinstance(error, self._errors.ConnectionError | self._errors.TimeoutError):
            return StoreUnavailableError(
                f"cannot reach the Redis online store at {_redacted(self.uri)} while {doing} "
                f"({type(error).__name__}: {error}); check that Redis is running there and the "
                "URL (host, port, password) is right, or use the SQLite online store"
            )
        return StoreError(
            f"the Redis online store at {_redacted(self.uri)} refused {doing}: {error}"
        )


def _redacted(url: str) -> str:
    """The URL with any password (in user:password@ or ?password=) replaced by ``***``."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if parts.password is not None:
            user = parts.username or ""
            netloc = f"{user}:***@{netloc.rpartition('@')[2]}"
        query = re.sub(r"(^|&)password=[^&]*", r"\1password=***", parts.query)
        return urlunsplit(parts._replace(netloc=netloc, query=query))
    except ValueError:
        return "<a Redis URL that does not parse>"


def _glob_escape(text: str) -> str:
    """``text`` as a literal in a Redis MATCH pattern."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)

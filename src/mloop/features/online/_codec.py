"""How every online store encodes entity keys and records, and checks what it is given.

Both backends keep the same bytes, so a record means the same thing in SQLite and in Redis:

- an **entity key** is the compact ASCII JSON array of its parts: ``(42,)`` → ``[42]``,
  ``("eu", 7)`` → ``["eu",7]``. Ints and strings never collide (``[1]`` is not ``["1"]``),
  and the text is canonical, so it can be the primary key itself.
- a **record** is the event time in epoch milliseconds, a layout id, and the values as one
  MessagePack array (https://msgpack.org; ints up to 64 bits, float64, UTF-8 strings, true,
  false, nil; an int beyond 64 bits is extension type 1 holding its decimal digits). The
  layout is the list of feature names the values follow, stored once per store as a JSON
  array under an id that is a hash of the names (16 hex digits), so it never changes and a
  reader can cache it forever. Naming the layout in each record means a feature added to a
  view after its last materialization reads back as not found instead of shifting the other
  values; keeping the names out of each record keeps records small.

Why MessagePack and not JSON (mloop 0.1 stored the values as JSON text, which is still read):
on the machine of bench/features.py, ten random float64 values take 5.4 µs to write as JSON
and 4.4 µs to parse (``repr`` and ``float()`` of 17-digit decimals), against 0.4 µs and 0.2 µs
as MessagePack, and the record is 91 bytes instead of 198. Every lookup decodes records, and
a materialization encodes one per entity, so this is most of their cost after the round trip.

Values are scalars. What a value becomes on the way in:

- ``int``, ``str``, ``bool``, ``None`` and finite ``float`` are kept exactly (ints of any size,
  floats bit for bit; strings as they are, lone surrogates included); ±infinity is kept too.
- NaN, ``pandas.NA`` and ``NaT`` are missing values: stored as null, read back as ``None``
  with status ``null_value``.
- numpy scalars become the Python ``int``, ``float`` or ``bool`` they hold.
- ``datetime`` and ``pandas.Timestamp`` become ISO-8601 strings in UTC (a naive time is taken
  to be UTC already), e.g. ``"2024-05-01T12:00:00+00:00"``; a ``date`` becomes
  ``"2024-05-01"``.
- anything else is an :class:`~mloop.errors.InvalidValueError` naming the feature.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, Any, NamedTuple

import msgpack  # type: ignore[import-untyped]  # ships no type information

from mloop.errors import InvalidKeyError, InvalidValueError, StoreError

from ._base import EntityKey, OnlineRead, Status

if TYPE_CHECKING:
    import pyarrow as pa

MAX_VIEW_NAME = 255
# Event times must survive Redis' Lua numbers (doubles): ±2**53 ms is ±285,000 years.
MAX_EVENT_MS = 2**53

# One record as a backend hands it back: key, event time, layout id, values (MessagePack
# bytes, or JSON text from mloop 0.1).
Record = tuple[str, int, str, bytes | str]
# One record on its way in: key text, event time, values (MessagePack).
Packed = tuple[str, int, bytes]

_BIG_INT = 1  # MessagePack extension type: an int beyond 64 bits, as its decimal digits
# Values written as they are; anything else is converted (or refused) by _value first.
_PLAIN: frozenset[type] = frozenset({int, str, bool, type(None)})


def _fast_list_encoder() -> Callable[[Any], str]:
    """Compact ASCII JSON of a list (entity keys, layouts); NaN raises ValueError, other types
    TypeError. Builds the C encoder once instead of on every call."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython always has it
        return json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
    iterencode = make(None, None, encode_basestring_ascii, None, ":", ",", False, False, False)
    return lambda row: "".join(iterencode(row, 0))


_encode_strict = _fast_list_encoder()
# The C scanner without json.loads' wrapper (typeshed does not know the attribute, which
# JSONDecoder.__init__ sets): layouts, and the values of mloop 0.1's JSON records.
_scan: Callable[[str, int], tuple[Any, int]]
_scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _big_int(value: Any) -> msgpack.ExtType:
    if type(value) is int:  # MessagePack's own ints stop at 64 bits
        return msgpack.ExtType(_BIG_INT, str(value).encode("ascii"))
    raise TypeError(f"cannot pack a {type(value).__name__}")


def _ext(code: int, data: bytes) -> int:
    if code != _BIG_INT:
        raise ValueError(f"unknown MessagePack extension type {code}")
    return int(data)


def _packer() -> msgpack.Packer:
    # One per batch: a Packer is not thread-safe.
    return msgpack.Packer(default=_big_int, use_bin_type=True, unicode_errors="surrogatepass")


def decode_values(data: bytes | str) -> list[Any]:
    """The values of a stored record (MessagePack, or the JSON text of mloop 0.1)."""
    if isinstance(data, bytes):
        values = msgpack.unpackb(data, ext_hook=_ext, unicode_errors="surrogatepass")
    else:
        values = _scan(data, 0)[0]
    if type(values) is not list:
        raise ValueError("not an array of values")
    return values


def check_view(view: str) -> str:
    """The view name, or InvalidKeyError when it cannot name a view."""
    if not isinstance(view, str) or not view or len(view) > MAX_VIEW_NAME:
        raise InvalidKeyError(
            f"feature view name {view!r:.80} is not acceptable: use a non-empty string of at "
            f"most {MAX_VIEW_NAME} characters"
        )
    if not view.isprintable():
        raise InvalidKeyError(
            f"feature view name {view!r:.80} has control or unprintable characters; "
            "use letters, digits and punctuation"
        )
    return view


def check_features(features: Sequence[str]) -> tuple[str, ...]:
    """The feature names as a tuple, or InvalidKeyError for an empty, duplicate or non-str one."""
    names = tuple(features)
    for name in names:
        if not isinstance(name, str) or not name:
            raise InvalidKeyError(f"feature name {name!r:.80} is not a non-empty string")
    if len(set(names)) != len(names):
        twice = sorted({name for name in names if names.count(name) > 1})
        raise InvalidKeyError(f"features {twice} are listed more than once; list each once")
    return names


def encode_key(key: EntityKey) -> str:
    """The canonical text of one entity key: ``(42,)`` → ``[42]``, ``("eu", 7)`` → ``["eu",7]``."""
    if type(key) is tuple and len(key) == 1:  # the common case, without the JSON encoder
        part = key[0]
        if type(part) is int:
            return f"[{part}]"
        if type(part) is str:
            return f"[{encode_basestring_ascii(part)}]"
    if not isinstance(key, tuple | list):
        raise InvalidKeyError(
            f"entity key {key!r:.80} is not a tuple ({type(key).__name__}); pass a tuple of "
            "the join key values, like (42,) or ('eu', 7)"
        )
    return _encode_strict([_key_part(part, key) for part in key])


def _key_part(part: Any, key: Sequence[Any]) -> int | str | bool:
    if isinstance(part, bool | int | str):
        return part if type(part) in (bool, int, str) else _exact(part)
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(part, numpy.integer | numpy.bool_):
        return part.item()  # type: ignore[no-any-return]
    raise InvalidKeyError(
        f"entity key {tuple(key)!r:.80}: a {type(part).__name__} part cannot identify an "
        "entity; join keys are int or str"
    )


def _exact(value: bool | int | str) -> bool | int | str:
    """The plain Python value of a subclass (IntEnum, numpy.str_, ...)."""
    if isinstance(value, bool):
        return bool(value)
    return int(value) if isinstance(value, int) else str(value)


class Layout(NamedTuple):
    """The feature names a batch's values follow, and the id records refer to them by."""

    id: str
    names: str  # JSON array

    @classmethod
    def of(cls, names: Sequence[str]) -> Layout:
        text = _encode_strict(list(names))
        return cls(hashlib.blake2b(text.encode(), digest_size=8).hexdigest(), text)


class Batch(NamedTuple):
    """A checked, encoded batch of records for one view, ready for a backend to write.

    Made by :func:`pack_records` (Python rows) or :func:`pack_arrow` (Arrow columns); one
    record per distinct key.
    """

    view: str
    layout: Layout
    records: list[Packed]


def pack_records(
    view: str,
    keys: Sequence[EntityKey],
    values: Sequence[Sequence[Any]],
    features: Sequence[str],
    event_times_ms: Sequence[int],
) -> Batch:
    """Check and encode a batch: its layout, and one record per distinct key.

    Everything is checked before a backend writes anything, so a bad value in the last row
    leaves the store untouched. When a key comes twice, the row with the later event time
    wins (on a tie, the later row), as if the rows had been written one by one.
    """
    check_view(view)
    names = _check_batch(view, features)
    if not len(keys) == len(values) == len(event_times_ms):
        raise InvalidValueError(
            f"writing to view {view!r}: {len(keys)} keys, {len(values)} rows of values and "
            f"{len(event_times_ms)} event times; pass one row and one event time per key"
        )
    width = len(names)
    pack = _packer().pack
    packed: list[Packed] = []
    for key, row, event_ms in zip(keys, values, event_times_ms, strict=True):
        if type(event_ms) is not int or not -MAX_EVENT_MS < event_ms < MAX_EVENT_MS:
            event_ms = _event_ms(event_ms, view, key)
        if len(row) != width:
            raise InvalidValueError(
                f"view {view!r}, key {key!r:.80}: {len(row)} values for {width} features "
                f"{list(names)!r:.200}; pass one value per feature"
            )
        plain = True
        for value in row:
            kind = type(value)
            if kind is float:
                if value != value:  # NaN is stored as a missing value
                    plain = False
                    break
            elif kind not in _PLAIN:
                plain = False
                break
        if not plain:
            row = [_value(value, name, view) for value, name in zip(row, names, strict=True)]
        packed.append((encode_key(key), event_ms, pack(row)))
    return Batch(view, Layout.of(names), _latest_per_key(packed))


def pack_arrow(
    view: str,
    keys: Sequence[pa.ChunkedArray | pa.Array],
    columns: Sequence[pa.ChunkedArray | pa.Array],
    features: Sequence[str],
    event_times_ms: pa.ChunkedArray | pa.Array,
) -> Batch:
    """:func:`pack_records` for Arrow columns (one per join key, one per feature, and the
    event times as int64 milliseconds), converted a column at a time instead of a value at a
    time; the same records, the same checks."""
    import pyarrow as pa
    import pyarrow.compute as pc

    check_view(view)
    names = _check_batch(view, features)
    if len(columns) != len(names):
        raise InvalidValueError(
            f"writing to view {view!r}: {len(columns)} columns for {len(names)} features"
        )
    rows = len(event_times_ms)
    if any(len(column) != rows for column in [*keys, *columns]):
        raise InvalidValueError(f"writing to view {view!r}: columns of different lengths")
    if not pa.types.is_integer(event_times_ms.type):
        raise InvalidValueError(f"writing to view {view!r}: event times must be int64 ms")
    times = event_times_ms.to_pylist()
    if times and (
        event_times_ms.null_count or not -MAX_EVENT_MS < min(times) <= max(times) < MAX_EVENT_MS
    ):
        bad = next(t for t in times if t is None or not -MAX_EVENT_MS < t < MAX_EVENT_MS)
        raise InvalidValueError(
            f"view {view!r}: event time {bad!r} is missing or out of range (±2**53 ms)"
        )
    values = []
    for column, name in zip(columns, names, strict=True):
        kind = column.type
        if pa.types.is_floating(kind):
            if kind != pa.float64():
                column = pc.cast(column, pa.float64())  # float32 0.1 is 0.10000000149011612
            column = pc.if_else(pc.is_nan(column), pa.scalar(None, pa.float64()), column)
            values.append(column.to_pylist())
        elif _as_python(kind):
            values.append(column.to_pylist())
        else:  # timestamps, dates, and what is refused: value by value
            values.append([_value(value, name, view) for value in column.to_pylist()])
    key_texts = [encode_key(key) for key in zip(*(key.to_pylist() for key in keys), strict=True)]
    pack = _packer().pack
    packed = [
        (key, event_ms, pack(row))
        for key, event_ms, row in zip(key_texts, times, zip(*values, strict=True), strict=True)
    ]
    return Batch(view, Layout.of(names), _latest_per_key(packed))


def _as_python(kind: pa.DataType) -> bool:
    """Arrow types whose Python values (``to_pylist``) are stored as they are."""
    import pyarrow as pa

    types = pa.types
    return bool(
        types.is_integer(kind)
        or types.is_boolean(kind)
        or types.is_string(kind)
        or types.is_large_string(kind)
    )


def _check_batch(view: str, features: Sequence[str]) -> tuple[str, ...]:
    names = check_features(features)
    if not names:
        raise InvalidValueError(f"writing to view {view!r} with no features; name at least one")
    return names


def _latest_per_key(packed: list[Packed]) -> list[Packed]:
    if len({row[0] for row in packed}) == len(packed):
        return packed
    latest: dict[str, Packed] = {}
    for row in packed:
        if row[0] not in latest or latest[row[0]][1] <= row[1]:
            latest[row[0]] = row
    return list(latest.values())


def _event_ms(value: Any, view: str, key: EntityKey) -> int:
    numpy = sys.modules.get("numpy")
    integer = (int, numpy.integer) if numpy is not None else int
    if not isinstance(value, integer) or isinstance(value, bool):
        raise InvalidValueError(
            f"view {view!r}, key {key!r:.80}: event time {value!r:.40} is a "
            f"{type(value).__name__}; pass epoch milliseconds as an int"
        )
    if not -MAX_EVENT_MS < value < MAX_EVENT_MS:
        raise InvalidValueError(
            f"view {view!r}, key {key!r:.80}: event time {value} ms is out of range "
            "(±2**53); pass epoch milliseconds"
        )
    return int(value)


def _value(value: Any, feature: str, view: str) -> Any:
    """One value as it is stored (see the module docstring), or InvalidValueError."""
    kind = type(value)
    if value is None or kind in (int, str, bool):
        return value
    if isinstance(value, float):  # float, numpy.float64
        number = float(value)
        return None if number != number else number
    if isinstance(value, bool | int | str):  # IntEnum, StrEnum, numpy.str_
        return _exact(value)
    if isinstance(value, datetime):  # also pandas.Timestamp; NaT is a datetime too
        if value != value:
            return None
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return aware.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.generic):
        if isinstance(value, numpy.bool_ | numpy.integer):
            return value.item()
        if isinstance(value, numpy.floating):
            number = float(value)
            return None if number != number else number
        if isinstance(value, numpy.datetime64):
            return _numpy_time(value, feature, view)
    pandas = sys.modules.get("pandas")
    if pandas is not None and value is pandas.NA:
        return None
    raise InvalidValueError(
        f"feature {feature!r} of view {view!r}: a {kind.__module__}.{kind.__qualname__} value "
        f"({value!r:.60}) cannot be stored online; online features hold int, float, str, bool, "
        "None or a timestamp"
    )


def _numpy_time(value: Any, feature: str, view: str) -> str | None:
    # Imported here: pandas is slow to import and only numpy's datetime64 needs it.
    import pandas

    return _value(pandas.Timestamp(value), feature, view)  # type: ignore[no-any-return]


class Reader:
    """Turns stored records into an :class:`OnlineRead` for the features asked for.

    ``load_layout`` fetches the names of a layout id this reader has not met yet (None if the
    store has no such layout); a layout never changes, so what it returns is kept.
    """

    def __init__(self, load_layout: Callable[[str], str | None]) -> None:
        self._load_layout = load_layout
        self._layouts: dict[str, tuple[str, ...]] = {}
        # (layout id, names asked for) -> positions in the stored values, -1 if absent; None
        # when the two are the same list.
        self._picks: dict[tuple[str, tuple[str, ...]], tuple[int, ...] | None] = {}
        self._checked: set[tuple[str, ...]] = set()

    def checked(self, features: Sequence[str]) -> tuple[str, ...]:
        """``check_features(features)``, remembered for the lists already checked."""
        if type(features) is tuple:
            try:
                if features in self._checked:
                    return features
            except TypeError:  # an unhashable name: check_features says what is wrong
                pass
        names = check_features(features)
        if len(self._checked) > 4096:
            self._checked.clear()
        self._checked.add(names)
        return names

    def build(
        self, keys: Sequence[str], found: dict[str, Record], features: tuple[str, ...]
    ) -> OnlineRead:
        """Rows in ``keys`` order; a key absent from ``found`` is not found."""
        width = len(features)
        rows: list[list[Any]] = []
        statuses: list[list[Status]] = []
        times: list[int | None] = []
        last_layout, picks = "", None
        for key in keys:
            record = found.get(key)
            if record is None:
                rows.append([None] * width)
                statuses.append(["not_found"] * width)
                times.append(None)
                continue
            _, event_ms, layout, packed = record
            if layout != last_layout:  # the records of one batch share their layout
                last_layout, picks = layout, self._pick(layout, features)
            try:
                stored = decode_values(packed)
            except Exception as error:  # noqa: BLE001 - whatever the bytes make the decoder do
                raise StoreError(
                    f"the stored record of entity key {key} does not decode ({error!r}); "
                    "something other than mloop wrote it: drop the view and materialize again"
                ) from None
            if picks is None:
                row = stored
                if None in row:
                    statuses.append(["present" if v is not None else "null_value" for v in row])
                else:
                    statuses.append(["present"] * width)
            else:
                row = [stored[i] if i >= 0 else None for i in picks]
                statuses.append(_statuses(row, picks))
            rows.append(row)
            times.append(event_ms)
        return OnlineRead(values=rows, statuses=statuses, event_times_ms=times)

    def _pick(self, layout: str, features: tuple[str, ...]) -> tuple[int, ...] | None:
        cache_key = (layout, features)
        try:
            return self._picks[cache_key]
        except KeyError:
            pass
        stored = self._names(layout)
        if stored == features:
            picks = None
        else:
            where = {name: i for i, name in enumerate(stored)}
            picks = tuple(where.get(name, -1) for name in features)
        if len(self._picks) > 4096:  # a view has few layouts; callers may ask many subsets
            self._picks.clear()
        self._picks[cache_key] = picks
        return picks

    def _names(self, layout: str) -> tuple[str, ...]:
        names = self._layouts.get(layout)
        if names is None:
            text = self._load_layout(layout)
            try:
                names = tuple(_scan(text, 0)[0]) if text is not None else None
            except (StopIteration, ValueError):
                names = None
            if names is None:
                raise StoreError(
                    f"the online store has records of layout {layout} but not the layout "
                    "itself (the list of their features); it was deleted by something other "
                    "than mloop: materialize the views again"
                )
            self._layouts[layout] = names
        return names


def _statuses(row: list[Any], picks: tuple[int, ...]) -> list[Status]:
    return [
        "not_found" if i < 0 else "present" if value is not None else "null_value"
        for value, i in zip(row, picks, strict=True)
    ]


def empty_read() -> OnlineRead:
    return OnlineRead(values=[], statuses=[], event_times_ms=[])

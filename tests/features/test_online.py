"""The online stores: one suite over SQLite and Redis, then what only one of them has.

Each backend comes with a way to open the same store again (``reopen``), to check that what a
store says it wrote is really in it. Redis tests use a namespace of their own in database 0 and
delete it afterwards; they skip (or fail, with MLOOP_REQUIRE_SERVICES=1) when Redis is down.
"""

from __future__ import annotations

import contextlib
import enum
import math
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mloop.errors import (
    ConfigError,
    InvalidKeyError,
    InvalidValueError,
    MissingExtraError,
    SchemaVersionError,
    StoreError,
    StoreUnavailableError,
)
from mloop.features.online import (
    OnlineRead,
    OnlineStore,
    RedisOnlineStore,
    SqliteOnlineStore,
    open_online_store,
    pack_arrow,
    pack_records,
)

FEATURES = ["amount", "tier"]


@dataclass
class Backend:
    name: str
    store: OnlineStore
    reopen: Callable[[], OnlineStore]


def _sqlite(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Backend]:
    store = SqliteOnlineStore(tmp_path / "online.db")
    yield Backend("sqlite", store, lambda: open_online_store(store.uri))
    store.close()


def _redis(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Backend]:
    import redis

    url = f"{request.getfixturevalue('redis_server')}/0"
    namespace = f"mloop-test-{uuid.uuid4().hex}"
    store = RedisOnlineStore(url, namespace=namespace)
    yield Backend("redis", store, lambda: RedisOnlineStore(url, namespace=namespace))
    store.close()
    client = redis.Redis.from_url(url, socket_timeout=5)
    keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
    for start in range(0, len(keys), 1000):
        client.unlink(*keys[start : start + 1000])
    client.close()


BACKENDS = {"sqlite": _sqlite, "redis": _redis}


@pytest.fixture(params=list(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from BACKENDS[request.param](tmp_path, request)


@pytest.fixture
def online(backend: Backend) -> OnlineStore:
    return backend.store


@pytest.fixture
def sqlite_online(tmp_path: Path) -> Iterator[SqliteOnlineStore]:
    store = SqliteOnlineStore(tmp_path / "online.db")
    yield store
    store.close()


def keys_of(*ids: Any) -> list[tuple[Any, ...]]:
    return [(i,) for i in ids]


# -- values -----------------------------------------------------------------------------------


class Color(enum.IntEnum):
    RED = 1


NASTY_TEXT = 'été 😀 "quoted" \\ back\nslash\x00nul\ud800 ],['
# (value written, value read back); NaN-like values read back as None with null_value.
ROUND_TRIPS: list[tuple[Any, Any]] = [
    (0, 0),
    (-1, -1),
    (2**62, 2**62),
    (-(2**62), -(2**62)),
    (2**100, 2**100),
    (0.1, 0.1),
    (1 / 3, 1 / 3),
    (1e-300, 1e-300),
    (-1.7976931348623157e308, -1.7976931348623157e308),
    (float("inf"), float("inf")),
    (float("-inf"), float("-inf")),
    ("", ""),
    ("plain", "plain"),
    ('été 😀 "quoted" \\ back\nslash\x00nul\ud800', 'été 😀 "quoted" \\ back\nslash\x00nul\ud800'),
    ("[1],[2]", "[1],[2]"),
    (True, True),
    (False, False),
    (np.int64(7), 7),
    (np.int8(-3), -3),
    (np.uint64(2**63), 2**63),
    (np.float32(0.1), float(np.float32(0.1))),
    (np.float64(2.5), 2.5),
    (np.bool_(True), True),
    (np.str_("numpy text"), "numpy text"),
    (Color.RED, 1),
    (datetime(2024, 5, 1, 12, 0), "2024-05-01T12:00:00+00:00"),
    (
        datetime(2024, 5, 1, 14, 0, 0, 250, tzinfo=timezone(timedelta(hours=2))),
        "2024-05-01T12:00:00.000250+00:00",
    ),
    (  # pandas keeps the nanoseconds
        pd.Timestamp("2024-05-01 14:00:00.000000001", tz="Europe/Paris"),
        "2024-05-01T12:00:00.000000001+00:00",
    ),
    (pd.Timestamp("2024-05-01 12:00"), "2024-05-01T12:00:00+00:00"),
    (np.datetime64("2024-05-01T12:00:00"), "2024-05-01T12:00:00+00:00"),
    (date(2024, 5, 1), "2024-05-01"),
]
MISSING: list[Any] = [None, float("nan"), np.float64("nan"), np.float32("nan"), pd.NA, pd.NaT]
MISSING += [np.datetime64("NaT")]


def test_every_value_type_round_trips_exactly(online: OnlineStore) -> None:
    written = [value for value, _ in ROUND_TRIPS] + MISSING
    names = [f"f{i}" for i in range(len(written))]
    assert online.write("values", [(1,)], [written], names, [1000]) == 1
    read = online.read("values", [(1,)], names)
    expected = [back for _, back in ROUND_TRIPS] + [None] * len(MISSING)
    got = read.values[0]
    assert got == expected
    for value, want in zip(got, expected, strict=True):
        assert type(value) is type(want), (value, want)
    assert math.copysign(1, online.read("values", [(1,)], ["f5"]).values[0][0]) == 1
    assert read.statuses[0] == ["present"] * len(ROUND_TRIPS) + ["null_value"] * len(MISSING)
    assert read.event_times_ms == [1000]


def test_negative_zero_and_float_repr_survive(online: OnlineStore) -> None:
    values = [-0.0, 5e-324, 0.30000000000000004, 123456789.12345679]
    online.write("floats", [(1,)], [values], ["a", "b", "c", "d"], [1])
    back = online.read("floats", [(1,)], ["a", "b", "c", "d"]).values[0]
    assert [repr(v) for v in back] == [repr(v) for v in values]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.dictionaries(
        st.one_of(st.integers(), st.text(max_size=20)).map(lambda part: (part,)),
        st.lists(
            st.one_of(
                st.none(),
                st.booleans(),
                st.integers(),
                st.floats(allow_nan=False),
                st.text(max_size=30),
            ),
            min_size=3,
            max_size=3,
        ),
        min_size=1,
        max_size=8,
    )
)
def test_any_plain_values_round_trip(online: OnlineStore, rows: dict[Any, list[Any]]) -> None:
    view = f"prop-{uuid.uuid4().hex[:8]}"
    keys = list(rows)
    assert online.write(view, keys, list(rows.values()), ["a", "b", "c"], [7] * len(keys)) == len(
        keys
    )
    read = online.read(view, keys, ["a", "b", "c"])
    assert read.values == list(rows.values())
    for row, values in zip(read.values, rows.values(), strict=True):
        assert [type(v) for v in row] == [type(v) for v in values]


def test_a_bad_value_in_the_last_row_writes_nothing(online: OnlineStore) -> None:
    online.write("v", keys_of(1, 2), [[1.0, "a"], [2.0, "b"]], FEATURES, [10, 10])
    rows = [[5.0, "new"], [6.0, "new"], [7.0, {"nested": "dict"}]]
    with pytest.raises(InvalidValueError, match=r"feature 'tier' of view 'v': a builtins\.dict"):
        online.write("v", keys_of(1, 2, 3), rows, FEATURES, [20, 20, 20])
    read = online.read("v", keys_of(1, 2, 3), FEATURES)
    assert read.values == [[1.0, "a"], [2.0, "b"], [None, None]]
    assert read.event_times_ms == [10, 10, None]


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ([1, 2], "builtins.list"),
        ((1,), "builtins.tuple"),
        (b"bytes", "builtins.bytes"),
        (object(), "builtins.object"),
        (np.array([1, 2]), "numpy.ndarray"),
        (np.complex64(1), "numpy.complex64"),
        (pd.Timedelta("1D"), "Timedelta"),
    ],
)
def test_values_that_are_not_scalars_are_refused(
    sqlite_online: SqliteOnlineStore, value: Any, kind: str
) -> None:
    with pytest.raises(InvalidValueError, match=f"feature 'tier' of view 'v': a .*{kind}"):
        sqlite_online.write("v", [(1,)], [[1, value]], FEATURES, [1])


@pytest.mark.parametrize(
    ("keys", "values", "features", "times", "error", "match"),
    [
        ([(1,)], [[1, 2]], ["a", "b"], [1, 2], InvalidValueError, "1 keys, 1 rows .* 2 event"),
        ([(1,)], [[1]], ["a", "b"], [1], InvalidValueError, "1 values for 2 features"),
        ([(1,)], [[1, 2]], ["a", "a"], [1], InvalidKeyError, r"\['a'\] are listed more than"),
        ([(1,)], [[1]], [""], [1], InvalidKeyError, "feature name '' is not"),
        ([(1,)], [[]], [], [1], InvalidValueError, "with no features"),
        ([(1.5,)], [[1]], ["a"], [1], InvalidKeyError, "a float part cannot identify"),
        ([(None,)], [[1]], ["a"], [1], InvalidKeyError, "a NoneType part"),
        ([42], [[1]], ["a"], [1], InvalidKeyError, "is not a tuple .*int.*; pass a tuple"),
        (["abc"], [[1]], ["a"], [1], InvalidKeyError, "is not a tuple .*str.*; pass a tuple"),
        ([(1,)], [[1]], ["a"], [1.5], InvalidValueError, "event time 1.5 is a float"),
        ([(1,)], [[1]], ["a"], [True], InvalidValueError, "event time True is a bool"),
        ([(1,)], [[1]], ["a"], ["1"], InvalidValueError, "event time '1' is a str"),
        ([(1,)], [[1]], ["a"], [2**60], InvalidValueError, "out of range"),
    ],
)
def test_malformed_writes_are_refused_before_writing(
    online: OnlineStore,
    keys: list[Any],
    values: list[list[Any]],
    features: list[str],
    times: list[Any],
    error: type[Exception],
    match: str,
) -> None:
    with pytest.raises(error, match=match):
        online.write("v", keys, values, features, times)
    assert online.read("v", [(1,)], ["a"]).statuses == [["not_found"]]


def test_numpy_keys_rows_and_event_times_are_accepted(online: OnlineStore) -> None:
    times: list[Any] = [np.int64(9)]
    online.write("v", [(np.int64(5),)], [[1, "a"]], FEATURES, times)
    read = online.read("v", [(5,), (np.int32(5),)], FEATURES)
    assert read.values == [[1, "a"], [1, "a"]]
    assert read.event_times_ms == [9, 9]
    rows = np.array([[1.5, np.nan], [3.0, 4.0]])
    online.write("array", keys_of(1, 2), rows, ["x", "y"], np.array([1, 2]))  # type: ignore[arg-type]
    assert online.read("array", keys_of(1, 2), ["x", "y"]).values == [[1.5, None], [3.0, 4.0]]


# -- reads ------------------------------------------------------------------------------------


def test_reads_follow_the_callers_key_order_with_missing_and_repeated_keys(
    online: OnlineStore,
) -> None:
    online.write("v", keys_of(1, 2, 3), [[1, "a"], [2, "b"], [3, "c"]], FEATURES, [10, 20, 30])
    read = online.read("v", keys_of(3, 99, 1, 2, 1), FEATURES)
    assert read.values == [[3, "c"], [None, None], [1, "a"], [2, "b"], [1, "a"]]
    assert read.statuses[1] == ["not_found", "not_found"]
    assert read.statuses[0] == ["present", "present"]
    assert read.event_times_ms == [30, None, 10, 20, 10]


def test_reading_no_keys_or_no_features(online: OnlineStore) -> None:
    assert online.read("v", [], FEATURES) == OnlineRead([], [], [])
    assert online.write("v", [], [], FEATURES, []) == 0
    online.write("v", [(1,)], [[1, "a"]], FEATURES, [1])
    assert online.read("v", [(1,)], []) == OnlineRead([[]], [[]], [1])


def test_a_view_never_written_reads_as_not_found(online: OnlineStore) -> None:
    read = online.read("never", keys_of(1, 2), FEATURES)
    assert read.statuses == [["not_found"] * 2] * 2
    assert read.event_times_ms == [None, None]


def test_stored_nulls_and_features_the_record_lacks(online: OnlineStore) -> None:
    online.write("v", [(1,)], [[None, "a"]], FEATURES, [5])
    read = online.read("v", [(1,)], ["tier", "amount", "added_later"])
    assert read.values == [["a", None, None]]
    assert read.statuses == [["present", "null_value", "not_found"]]
    assert read.event_times_ms == [5]


def test_features_can_be_read_in_any_order_and_subset(online: OnlineStore) -> None:
    names = [f"f{i}" for i in range(10)]
    online.write("v", keys_of(1, 2), [list(range(10)), list(range(10, 20))], names, [1, 1])
    read = online.read("v", keys_of(2, 1), ["f9", "f0", "f5"])
    assert read.values == [[19, 10, 15], [9, 0, 5]]


def test_a_large_read_keeps_order(online: OnlineStore) -> None:
    n = 5000  # above SQLite's 4096 keys per SELECT
    ids = list(range(n))
    online.write("v", keys_of(*ids), [[i, str(i)] for i in ids], FEATURES, [1] * n)
    wanted = [(i,) for i in reversed(range(-10, n, 3))]
    read = online.read("v", wanted, FEATURES)
    assert read.values == [[i, str(i)] if i >= 0 else [None, None] for (i,) in wanted]


# -- keys -------------------------------------------------------------------------------------


def test_int_str_and_bool_keys_never_collide(online: OnlineStore) -> None:
    keys: list[tuple[Any, ...]] = [(1,), ("1",), (True,), (1, 1), ("1", 1), (1, "1"), ()]
    online.write("v", keys, [[i, str(i)] for i in range(len(keys))], FEATURES, [1] * len(keys))
    read = online.read("v", list(reversed(keys)), ["amount"])
    assert read.values == [[i] for i in reversed(range(len(keys)))]


def test_composite_keys(online: OnlineStore) -> None:
    keys = [("eu", 7), ("eu", 8), (7, "eu"), ("us", 7)]
    online.write("v", keys, [[1, "a"], [2, "b"], [3, "c"], [4, "d"]], FEATURES, [1] * 4)
    read = online.read("v", [("us", 7), ("eu", 7), ("eu", 9), (7, "eu")], ["tier"])
    assert read.values == [["d"], ["a"], [None], ["c"]]


HOSTILE_KEYS: list[tuple[Any, ...]] = [
    ("x" * 20_000,),
    ("é 😀 中文",),
    ("quote ' and \" and `",),
    ("'); DROP TABLE online_views; --",),
    ("*?[]\\ glob",),
    ("new\nline\ttab\x00nul",),
    ("\ud800 lone surrogate",),
    ("",),
    (2**80,),
    (-(2**80), "a:b:[c]"),
]


def test_hostile_keys_are_just_keys(online: OnlineStore) -> None:
    n = len(HOSTILE_KEYS)
    online.write("v", HOSTILE_KEYS, [[i, "k"] for i in range(n)], FEATURES, [1] * n)
    read = online.read("v", list(reversed(HOSTILE_KEYS)), ["amount"])
    assert read.values == [[i] for i in reversed(range(n))]


# -- views ------------------------------------------------------------------------------------

HOSTILE_VIEWS = [
    "Users",
    "users",
    "ventes_été_🚀",
    'quote"view',
    "x'); DROP TABLE online_views; --",
    "a:b",
    "a",
    "a%3Ab",
    "v*",
    "v?[x]\\",
    "with space",
    "v" * 255,
]


def test_views_are_isolated_whatever_their_names(backend: Backend) -> None:
    online = backend.store
    for i, view in enumerate(HOSTILE_VIEWS):
        online.write(view, keys_of(1, 2), [[i, view], [i, view]], FEATURES, [1, 1])
    reopened = backend.reopen()
    for i, view in enumerate(HOSTILE_VIEWS):
        assert reopened.read(view, keys_of(1, 2), FEATURES).values == [[i, view], [i, view]]
    reopened.close()


@pytest.mark.parametrize(
    ("view", "match"),
    [
        ("", "not acceptable"),
        ("v" * 256, "at most 255"),
        ("tab\tview", "control"),
        ("nul\x00", "control"),
        ("line\nbreak", "control"),
    ],
)
def test_unusable_view_names_are_refused(online: OnlineStore, view: str, match: str) -> None:
    with pytest.raises(InvalidKeyError, match=match):
        online.write(view, [(1,)], [[1, "a"]], FEATURES, [1])
    with pytest.raises(InvalidKeyError, match=match):
        online.read(view, [(1,)], FEATURES)
    with pytest.raises(InvalidKeyError, match=match):
        online.drop_view(view)


def test_drop_view_forgets_only_that_view(online: OnlineStore) -> None:
    n = 2500  # more than one SCAN/UNLINK batch on Redis
    for view in ("a", "a:b", "A", "a*", "b"):
        online.write(view, keys_of(*range(n)), [[i, view] for i in range(n)], FEATURES, [1] * n)
    online.drop_view("a")
    online.drop_view("never written")
    assert online.read("a", keys_of(0, n - 1), FEATURES).statuses == [["not_found"] * 2] * 2
    for view in ("a:b", "A", "a*", "b"):
        assert online.read(view, keys_of(0, n - 1), ["tier"]).values == [[view], [view]]
    online.write("a", [(1,)], [[1, "again"]], FEATURES, [0])
    assert online.read("a", [(1,)], ["tier"]).values == [["again"]]


# -- writes -----------------------------------------------------------------------------------


def test_an_older_record_never_overwrites_a_newer_one(backend: Backend) -> None:
    online = backend.store
    assert online.write("v", keys_of(1, 2), [[1, "t100"], [2, "t100"]], FEATURES, [100, 100]) == 2
    assert online.write("v", keys_of(1, 2), [[1, "t50"], [2, "t150"]], FEATURES, [50, 150]) == 1
    assert online.read("v", keys_of(1, 2), ["tier"]).values == [["t100"], ["t150"]]
    assert online.write("v", [(1,)], [[1, "t100 again"]], FEATURES, [100]) == 1
    reopened = backend.reopen()
    read = reopened.read("v", keys_of(1, 2), ["tier"])
    reopened.close()
    assert read.values == [["t100 again"], ["t150"]]
    assert read.event_times_ms == [100, 150]


def test_negative_event_times_order_too(online: OnlineStore) -> None:
    online.write("v", [(1,)], [[1, "-5"]], FEATURES, [-5])
    online.write("v", [(1,)], [[1, "-10"]], FEATURES, [-10])
    online.write("v", [(2,)], [[1, "-10"]], FEATURES, [-10])
    online.write("v", [(2,)], [[1, "0"]], FEATURES, [0])
    read = online.read("v", keys_of(1, 2), ["tier"])
    assert read.values == [["-5"], ["0"]]
    assert read.event_times_ms == [-5, 0]


def test_a_key_twice_in_one_batch_keeps_the_later_event(online: OnlineStore) -> None:
    keys = keys_of(1, 1, 2, 2)
    rows = [[1, "t5"], [1, "t3"], [2, "first t7"], [2, "second t7"]]
    assert online.write("v", keys, rows, FEATURES, [5, 3, 7, 7]) == 2
    read = online.read("v", keys_of(1, 2), ["tier"])
    assert read.values == [["t5"], ["second t7"]]


def test_a_write_replaces_the_whole_record(online: OnlineStore) -> None:
    online.write("v", [(1,)], [[1, "a"]], FEATURES, [1])
    online.write("v", [(1,)], [["only"]], ["other"], [2])
    read = online.read("v", [(1,)], ["amount", "other"])
    assert read.values == [[None, "only"]]
    assert read.statuses == [["not_found", "present"]]


def test_readers_see_a_batch_whole_or_not_at_all(online: OnlineStore) -> None:
    n = 20_000
    ids = list(range(n))
    online.write("v", keys_of(*ids), [[i, "old"] for i in ids], FEATURES, [1000] * n)
    samples = [keys_of(*range(0, n, 97)), keys_of(*range(n - 1, -1, -1))]  # 207 keys; all keys
    seen: list[set[int | None]] = []
    done = threading.Event()
    started = threading.Barrier(3)

    def read_until_done(keys: list[tuple[Any, ...]]) -> None:
        started.wait()
        while True:
            finished = done.is_set()
            seen.append(set(online.read("v", keys, ["amount"]).event_times_ms))
            if finished:
                return

    readers = [threading.Thread(target=read_until_done, args=(keys,)) for keys in samples]
    for reader in readers:
        reader.start()
    started.wait()
    online.write("v", keys_of(*ids), [[i, "new"] for i in ids], FEATURES, [2000] * n)
    done.set()
    for reader in readers:
        reader.join()
    assert {frozenset(times) for times in seen} <= {frozenset({1000}), frozenset({2000})}
    assert {2000} in seen


# -- open_online_store ------------------------------------------------------------------------


def test_open_online_store_forms(isolated_settings: Path, tmp_path: Path) -> None:
    default = open_online_store("")
    assert isinstance(default, SqliteOnlineStore)
    assert default.path == isolated_settings / ".mloop" / "online.db"
    default.close()
    relative = open_online_store("sqlite:///rel/online.db")
    assert isinstance(relative, SqliteOnlineStore)
    assert relative.path == Path.cwd() / "rel" / "online.db"
    relative.close()
    absolute = open_online_store(f"sqlite:///{tmp_path / 'abs.db'}")
    assert isinstance(absolute, SqliteOnlineStore)
    assert absolute.path == tmp_path / "abs.db"
    again = open_online_store(absolute.uri)
    assert again.uri == absolute.uri
    again.close()
    absolute.close()
    plain = open_online_store(str(tmp_path / "plain.db"))
    assert isinstance(plain, SqliteOnlineStore)
    assert plain.path == tmp_path / "plain.db"
    plain.close()
    for url in ("redis://127.0.0.1:6379/0", "rediss://cache:6380/1", "unix:///run/redis.sock"):
        store = open_online_store(url)
        assert isinstance(store, RedisOnlineStore)
        assert store.uri == url
        store.close()


def test_the_default_follows_the_online_store_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MLOOP_ONLINE_STORE", f"sqlite:///{tmp_path / 'set.db'}")
    store = open_online_store("")
    assert isinstance(store, SqliteOnlineStore)
    assert store.path == tmp_path / "set.db"
    store.close()


@pytest.mark.parametrize(
    ("uri", "match"),
    [
        ("postgresql://db/features", "'postgresql' is not an online store; use sqlite:///"),
        ("memory://", "'memory' is not an online store"),
        ("sqlite://", "name a database file"),
        ("sqlite:///:memory:", "name a database file"),
        (":memory:", "name a database file"),
        ("redis://127.0.0.1:notaport/0", "is not a Redis URL .* use redis://host:6379/0"),
    ],
)
def test_open_online_store_refuses_what_it_cannot_open(uri: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        open_online_store(uri)


# -- SQLite -----------------------------------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import sys, time
    from mloop.features.online import SqliteOnlineStore

    store = SqliteOnlineStore(sys.argv[1])
    inserts = 0

    def pause_mid_batch(sql):
        global inserts
        if sql.lstrip().startswith("INSERT INTO"):
            inserts += 1
            if inserts == 5000:  # thousands of the batch's rows are in, uncommitted
                print("writing", flush=True)
                time.sleep(60)

    store._connection().set_trace_callback(pause_mid_batch)
    n = int(sys.argv[2])
    store.write("v", [(i,) for i in range(n)], [[i, "new"] for i in range(n)],
                ["amount", "tier"], [2000] * n)
    print("committed", flush=True)
    """
)


def test_a_writer_killed_mid_batch_leaves_the_old_values(tmp_path: Path) -> None:
    path = tmp_path / "online.db"
    n = 20_000
    store = SqliteOnlineStore(path)
    store.write("v", keys_of(*range(n)), [[i, "old"] for i in range(n)], FEATURES, [1000] * n)
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), str(n)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "writing"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        output, _ = child.communicate(timeout=30)
    assert "committed" not in output
    reopened = SqliteOnlineStore(path)
    read = reopened.read("v", keys_of(*range(n)), FEATURES)
    reopened.close()
    assert set(read.event_times_ms) == {1000}
    assert {row[1] for row in read.values} == {"old"}
    assert store.write("v", [(1,)], [[1, "after"]], FEATURES, [3000]) == 1  # lock released
    store.close()


def test_eight_threads_read_and_write_at_once(sqlite_online: SqliteOnlineStore) -> None:
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            for batch in range(20):
                ids = range(thread * 10_000 + batch * 50, thread * 10_000 + batch * 50 + 50)
                rows = [[i, f"t{thread}"] for i in ids]
                sqlite_online.write("v", keys_of(*ids), rows, FEATURES, [batch] * 50)
                sqlite_online.write("shared", [(0,)], [[thread, "x"]], FEATURES, [batch])
                read = sqlite_online.read("v", keys_of(*ids), ["tier"])
                assert read.values == [[f"t{thread}"]] * 50
                sqlite_online.read("shared", [(0,)], FEATURES)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    everything = [i for t in range(8) for i in range(t * 10_000, t * 10_000 + 1000)]
    read = sqlite_online.read("v", keys_of(*everything), ["tier"])
    assert read.values == [[f"t{i // 10_000}"] for i in everything]
    assert sqlite_online.read("shared", [(0,)], FEATURES).event_times_ms == [19]


def test_a_forked_child_opens_its_own_connection(sqlite_online: SqliteOnlineStore) -> None:
    sqlite_online.write("v", [(1,)], [[1, "parent"]], FEATURES, [1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads, 3.12+
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            sqlite_online.write("v", [(2,)], [[2, "child"]], FEATURES, [1])
            ok = sqlite_online.read("v", keys_of(1, 2), ["tier"]).values
            code = 0 if ok == [["parent"], ["child"]] else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert sqlite_online.read("v", keys_of(1, 2), ["tier"]).values == [["parent"], ["child"]]


def test_a_locked_database_is_unavailable_not_a_hang(tmp_path: Path) -> None:
    path = tmp_path / "online.db"
    store = SqliteOnlineStore(path, busy_timeout=0.2)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match=r"online\.db stayed locked .* 0\.2 s"):
            store.write("v", [(1,)], [[1, "a"]], FEATURES, [1])
        assert time.monotonic() - started < 5
        assert store.read("v", [(1,)], FEATURES).statuses == [["not_found"] * 2]  # WAL
    finally:
        other.rollback()
        other.close()
        store.close()


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "online.db"
    path.write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(StoreError, match="is not a SQLite database"):
        SqliteOnlineStore(path)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "online.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(SchemaVersionError, match=r"schema version 99, .* upgrade mloop"):
        SqliteOnlineStore(path)


def test_a_closed_store_says_so(tmp_path: Path) -> None:
    store = SqliteOnlineStore(tmp_path / "online.db")
    store.close()
    with pytest.raises(StoreError, match="is closed"):
        store.read("v", [(1,)], FEATURES)


def test_sqlite_layout_is_wal_with_a_table_per_view(sqlite_online: SqliteOnlineStore) -> None:
    sqlite_online.write("Users", [(1,)], [[1, "a"]], FEATURES, [1])
    sqlite_online.write("users", [(1,)], [[2, "b"]], FEATURES, [1])
    with contextlib.closing(sqlite3.connect(sqlite_online.path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        views = conn.execute("SELECT view, table_name FROM online_views ORDER BY view").fetchall()
        assert [view for view, _ in views] == ["Users", "users"]
        assert len({table for _, table in views}) == 2
        table = views[0][1]
        key, event_ms, layout, values = conn.execute(f"SELECT * FROM {table}").fetchone()
        names = conn.execute("SELECT features FROM online_layouts WHERE id = ?", (layout,))
        assert names.fetchall() == [('["amount","tier"]',)]
    assert (key, event_ms, values) == ("[1]", 1, msgpack.packb([1, "a"]))
    sqlite_online.drop_view("Users")
    with contextlib.closing(sqlite3.connect(sqlite_online.path)) as conn:
        assert conn.execute("SELECT view FROM online_views").fetchall() == [("users",)]


# -- Redis ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_redis_fails_fast_and_hides_the_password() -> None:
    url = f"redis://reader:s3cret@127.0.0.1:{_free_port()}/0"
    store = RedisOnlineStore(url)
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError) as caught:
        store.read("v", [(1,)], FEATURES)
    assert time.monotonic() - started < 3
    message = str(caught.value)
    assert "s3cret" not in message
    assert f"redis://reader:***@127.0.0.1:{url.rsplit(':', 1)[1]}" in message
    assert "check that Redis is running" in message
    with pytest.raises(StoreUnavailableError):
        store.write("v", [(1,)], [[1, "a"]], FEATURES, [1])
    assert "s3cret" not in repr(store)
    store.close()


def test_a_password_in_the_query_is_hidden_too() -> None:
    store = RedisOnlineStore(f"redis://127.0.0.1:{_free_port()}/0?password=s3cret")
    with pytest.raises(StoreUnavailableError) as caught:
        store.read("v", [(1,)], FEATURES)
    assert "s3cret" not in str(caught.value)
    assert "?password=***" in str(caught.value)
    store.close()


def test_redis_records_are_laid_out_under_the_namespace(redis_server: str) -> None:
    import redis

    namespace = f"mloop-test-{uuid.uuid4().hex}"
    store = RedisOnlineStore(f"{redis_server}/0", namespace=namespace)
    client = redis.Redis.from_url(f"{redis_server}/0")
    try:
        store.write("cust:omer%", [("eu", 7)], [[0.5, "gold"]], FEATURES, [1714557600000])
        record = f'{namespace}:cust%3Aomer%25:["eu",7]'.encode()
        layouts = f"{namespace}:layouts".encode()
        assert sorted(client.scan_iter(match=f"{namespace}:*")) == [record, layouts]
        value = client.get(record)
        assert value is not None
        assert value[:18] == b"00001714557600000\n"
        assert value[34:] == b"\n" + msgpack.packb([0.5, "gold"])
        assert client.hgetall(layouts) == {value[18:34]: b'["amount","tier"]'}
        client.set(f'{namespace}:cust%3Aomer%25:["eu",8]', "not a record")
        with pytest.raises(StoreError, match="holds b'not a record', not an mloop record"):
            store.read("cust:omer%", [("eu", 8)], FEATURES)
        store.drop_view("cust:omer%")
        assert list(client.scan_iter(match=f"{namespace}:*")) == [layouts]
    finally:
        store.close()
        for key in client.scan_iter(match=f"{namespace}:*"):
            client.delete(key)
        client.close()


def test_redis_needs_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'mloop\[redis\]'"):
        RedisOnlineStore("redis://127.0.0.1:6379/0")


def test_an_empty_namespace_is_refused() -> None:
    with pytest.raises(InvalidKeyError, match="Redis namespace ''"):
        RedisOnlineStore("redis://127.0.0.1:6379/0", namespace="")


# -- record formats -----------------------------------------------------------------------------


def test_a_version_1_file_with_json_records_is_upgraded_and_read(tmp_path: Path) -> None:
    path = tmp_path / "online.db"
    store = SqliteOnlineStore(path)
    store.write("v", keys_of(1, 2), [[1.0, "a"], [2.0, "b"]], FEATURES, [5, 5])
    store.close()
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        # what mloop 0.1 left: values as JSON text, schema version 1
        [(table,)] = conn.execute("SELECT table_name FROM online_views").fetchall()
        conn.execute(f"UPDATE {table} SET vals = ? WHERE key = '[1]'", ('[0.1,"été \\ud800"]',))
        conn.execute("PRAGMA user_version = 1")
    reopened = SqliteOnlineStore(path)
    try:
        read = reopened.read("v", keys_of(1, 2), FEATURES)
        assert read.values == [[0.1, "été \ud800"], [2.0, "b"]]
        reopened.write("v", keys_of(1), [[3.0, "c"]], FEATURES, [6])  # replaces the old record
        assert reopened.read("v", keys_of(1), FEATURES).values == [[3.0, "c"]]
    finally:
        reopened.close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (2,)


def test_json_records_of_mloop_0_1_read_in_redis_too(redis_server: str) -> None:
    import redis

    namespace = f"mloop-test-{uuid.uuid4().hex}"
    store = RedisOnlineStore(f"{redis_server}/0", namespace=namespace)
    client = redis.Redis.from_url(f"{redis_server}/0")
    try:
        store.write("v", keys_of(1), [[1.0, "a"]], FEATURES, [5])
        layout = client.get(f"{namespace}:v:[1]")[18:34]  # type: ignore[index]
        client.set(f"{namespace}:v:[2]", b"00000000000000005\n" + layout + b'\n[0.1,"x"]')
        assert store.read("v", keys_of(1, 2), FEATURES).values == [[1.0, "a"], [0.1, "x"]]
        assert store.write("v", keys_of(2), [[2.0, "y"]], FEATURES, [4]) == 0  # older: kept
        assert store.write("v", keys_of(2), [[2.0, "y"]], FEATURES, [6]) == 1
        assert store.read("v", keys_of(2), FEATURES).values == [[2.0, "y"]]
    finally:
        store.close()
        for key in client.scan_iter(match=f"{namespace}:*"):
            client.delete(key)
        client.close()


def test_a_record_that_does_not_decode_names_the_key(sqlite_online: SqliteOnlineStore) -> None:
    sqlite_online.write("v", keys_of(1), [[1.0, "a"]], FEATURES, [5])
    with contextlib.closing(sqlite3.connect(sqlite_online.path)) as conn, conn:
        [(table,)] = conn.execute("SELECT table_name FROM online_views").fetchall()
        conn.execute(f"UPDATE {table} SET vals = ?", (b"\xc1 not msgpack",))
    with pytest.raises(StoreError, match=r"entity key \[1\] does not decode"):
        sqlite_online.read("v", keys_of(1), FEATURES)


# pack_arrow must make exactly the records pack_records makes from the same values.
_ARROW_COLUMNS: dict[str, tuple[Any, Any]] = {
    "float64": (pa.float64(), st.floats(allow_nan=True, allow_infinity=True)),
    "float32": (pa.float32(), st.floats(width=32, allow_nan=True, allow_infinity=True)),
    "int64": (pa.int64(), st.integers(-(2**63), 2**63 - 1)),
    "uint64": (pa.uint64(), st.integers(0, 2**64 - 1)),
    "int8": (pa.int8(), st.integers(-128, 127)),
    "bool": (pa.bool_(), st.booleans()),
    "string": (pa.string(), st.text(st.characters(exclude_categories=("Cs",)), max_size=12)),
    "large_string": (pa.large_string(), st.text(max_size=5).filter(lambda t: t.isascii())),
    "timestamp": (
        pa.timestamp("us", tz="UTC"),
        st.datetimes(
            min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
        ),
    ),
    "date": (pa.date32(), st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 1, 1))),
}


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    kinds=st.lists(st.sampled_from(sorted(_ARROW_COLUMNS)), min_size=1, max_size=5),
    rows=st.integers(0, 12),
)
def test_arrow_columns_pack_like_python_rows(
    data: st.DataObject, kinds: list[str], rows: int
) -> None:
    columns = []
    python_columns = []
    for kind in kinds:
        arrow_type, values = _ARROW_COLUMNS[kind]
        column = data.draw(st.lists(st.one_of(st.none(), values), min_size=rows, max_size=rows))
        array = pa.array(column, type=arrow_type)
        columns.append(pa.chunked_array([array[: rows // 2], array[rows // 2 :]], arrow_type))
        python_columns.append(array.to_pylist())
    key_values = st.integers(-5, 5) if data.draw(st.booleans()) else st.text(max_size=2)
    keys = data.draw(st.lists(key_values, min_size=rows, max_size=rows))  # repeats too
    key_column = pa.array(keys, pa.int64() if keys and type(keys[0]) is int else pa.string())
    times = data.draw(st.lists(st.integers(-(2**52), 2**52), min_size=rows, max_size=rows))
    names = [f"f{i}" for i in range(len(kinds))]
    from_arrow = pack_arrow("v", [key_column], columns, names, pa.array(times, pa.int64()))
    from_rows = pack_records(
        "v",
        [(k,) for k in keys],
        [list(row) for row in zip(*python_columns, strict=True)],
        names,
        times,
    )
    assert from_arrow == from_rows


def test_arrow_columns_that_cannot_be_stored_are_refused() -> None:
    decimals = pa.array([1, 2], pa.decimal128(5, 2))
    with pytest.raises(InvalidValueError, match=r"feature 'f0' of view 'v': a decimal\.Decimal"):
        pack_arrow("v", [pa.array([1, 2])], [decimals], ["f0"], pa.array([1, 2], pa.int64()))
    with pytest.raises(InvalidKeyError, match="a NoneType part cannot identify"):
        pack_arrow("v", [pa.array([1, None])], [pa.array([1.0, 2.0])], ["f0"], pa.array([1, 2]))
    with pytest.raises(InvalidValueError, match="event time None is missing or out of range"):
        pack_arrow("v", [pa.array([1, 2])], [pa.array([1.0, 2.0])], ["f0"], pa.array([1, None]))
    with pytest.raises(InvalidValueError, match="1 columns for 2 features"):
        pack_arrow("v", [pa.array([1])], [pa.array([1.0])], ["a", "b"], pa.array([1]))

"""The prediction log: append, read back, compaction, crash replay, concurrent writers."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mloop.errors import ConflictError, InvalidInputError, InvalidValueError
from mloop.serving._prediction_log import PredictionLog, compact, read_predictions

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def record(i: int, *, when: datetime | None = None, model: str = "churn") -> dict[str, Any]:
    return {
        "prediction_id": f"p{i}",
        "time": when or T0 + timedelta(seconds=i),
        "model": model,
        "version": 3,
        "inputs": {"age": i, "income": i * 1.5, "city": "Zürich\n\u2028"},
        "outputs": {"prediction": i % 2, "proba": [0.25, 0.75]},
        "latency_ms": 1.25,
        "shadow": False,
        "served_by": "host:8000",
    }


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "predictions"


@pytest.fixture
def plog(folder: Path) -> Iterator[PredictionLog]:
    with PredictionLog(folder, model="churn", background=False) as opened:
        yield opened


def parquet_rows(folder: Path) -> pd.DataFrame:
    files = sorted((folder / "parquet").rglob("*.parquet"))
    if not files:
        return pd.DataFrame(columns=["prediction_id"])
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)


def test_round_trip_before_and_after_compaction(plog: PredictionLog, folder: Path) -> None:
    assert plog.append([record(i) for i in range(5)]) == 5
    spooled = read_predictions(folder=folder)  # read from the open segment
    assert spooled["prediction_id"].tolist() == [f"p{i}" for i in range(5)]
    assert spooled.loc[2, "inputs"] == {"age": 2, "income": 3.0, "city": "Zürich\n\u2028"}
    assert spooled.loc[2, "outputs"] == {"prediction": 0, "proba": [0.25, 0.75]}
    assert spooled.loc[4, "time"] == pd.Timestamp(T0 + timedelta(seconds=4))
    assert spooled["version"].tolist() == [3] * 5
    plog.rotate()
    assert plog.compact() == 1
    assert list((folder / "spool" / "churn").iterdir()) == []
    compacted = read_predictions(folder=folder)
    pd.testing.assert_frame_equal(compacted, spooled)
    day = folder / "parquet" / "model=churn" / "date=2026-12-01"
    assert len(list(day.glob("*.parquet"))) == 1


def test_settings_give_the_default_folder(isolated_settings: Path) -> None:
    with PredictionLog(model="churn", background=False) as plog:
        plog.append([record(1)])
    assert (isolated_settings / ".mloop" / "predictions" / "parquet").is_dir()
    assert read_predictions()["prediction_id"].tolist() == ["p1"]


def test_filters_by_model_and_time_with_partitions_per_day(
    plog: PredictionLog, folder: Path
) -> None:
    day2 = T0 + timedelta(days=1)
    plog.append([record(1), record(2, when=day2), record(3, model="fraud"), record(4, when=day2)])
    plog.rotate()
    plog.compact()
    days = sorted(p.name for p in (folder / "parquet" / "model=churn").iterdir())
    assert days == ["date=2026-12-01", "date=2026-12-02"]
    assert (folder / "parquet" / "model=fraud").is_dir()
    plog.append([record(5, when=day2)])  # still in the spool
    assert read_predictions(folder=folder, model="fraud")["prediction_id"].tolist() == ["p3"]
    second = read_predictions(folder=folder, model="churn", start="2026-12-02")
    assert second["prediction_id"].tolist() == ["p2", "p4", "p5"]
    first = read_predictions(folder=folder, start=T0, end=datetime(2026, 12, 2))
    assert sorted(first["prediction_id"]) == ["p1", "p3"]
    assert len(read_predictions(folder=folder, model="nobody")) == 0
    with pytest.raises(InvalidValueError, match="end"):
        read_predictions(folder=folder, start="2026-12-02", end="2026-12-01")
    with pytest.raises(InvalidValueError, match="ISO-8601"):
        read_predictions(folder=folder, start="yesterday")
    with pytest.raises(InvalidInputError, match="model name"):
        read_predictions(folder=folder, model="../etc")


def test_values_are_converted_exactly(plog: PredictionLog, folder: Path) -> None:
    row = record(1)
    row["inputs"] = {
        "f": np.float32(0.5),
        "i": np.int64(2**40),
        "arr": np.array([[1, 2], [3, 4]]),
        "when": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "na": pd.NA,
        "nat": pd.NaT,
        "dec": Decimal("1.5"),
        "id": uuid.UUID(int=7),
        "nan": float("nan"),
    }
    row["prediction_id"] = uuid.UUID(int=1)
    row["time"] = datetime(2026, 12, 1, 13, 0)  # naive: UTC
    plog.append([row])
    got = read_predictions(folder=folder).iloc[0]
    assert got["prediction_id"] == str(uuid.UUID(int=1))
    assert got["time"] == pd.Timestamp("2026-12-01T13:00Z")
    inputs = got["inputs"]
    assert math.isnan(inputs.pop("nan"))
    assert inputs == {
        "f": 0.5,
        "i": 2**40,
        "arr": [[1, 2], [3, 4]],
        "when": "2026-01-02T03:04:05+00:00",
        "na": None,
        "nat": None,
        "dec": 1.5,
        "id": str(uuid.UUID(int=7)),
    }


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ({"prediction_id": "x"}, "list of dicts"),
        ("abc", "list of dicts"),
        ([42], "record 1 must be a dict"),
        ([{"prediction_id": "p"}], "lacks 'time', 'inputs', 'outputs'"),
        ([{**record(0), "colour": 1}], "unknown keys"),
        ([{**record(0), "prediction_id": ""}], "prediction_id"),
        ([{**record(0), "prediction_id": "x" * 201}], "prediction_id"),
        ([{**record(0), "time": "2026-12-01"}], "time must be a datetime"),
        ([{**record(0), "version": "3"}], "version must be an int"),
        ([{**record(0), "version": True}], "version must be an int"),
        ([{**record(0), "latency_ms": "fast"}], "latency_ms"),
        ([{**record(0), "shadow": 1}], "shadow"),
        ([{**record(0), "served_by": 8000}], "served_by"),
        ([{**record(0), "model": "../../etc"}], "model name"),
        ([{**record(0), "inputs": [1, 2]}], "inputs must be a dict"),
        ([{**record(0), "inputs": {"x": object()}}], r"inputs\.x is of type object"),
        (
            [{**record(0), "outputs": {"y": {"z": [1, b"raw"]}}}],
            r"outputs\.y\.z\[1\] is of type bytes",
        ),
        ([{**record(0), "inputs": {"s": {1, 2}}}], r"inputs\.s is of type set"),
        ([{**record(0), "inputs": {(1, 2): 3}}], "key"),
    ],
)
def test_bad_records_are_refused_and_nothing_is_written(
    plog: PredictionLog, folder: Path, records: Any, message: str
) -> None:
    plog.append([record(1)])
    batch = [record(2), *records] if isinstance(records, list) else records
    with pytest.raises(InvalidValueError, match=message):
        plog.append(batch)
    assert read_predictions(folder=folder)["prediction_id"].tolist() == ["p1"]


def test_huge_records_are_refused(folder: Path) -> None:
    with PredictionLog(folder, model="churn", background=False, max_record_bytes=10_000) as plog:
        big = {**record(1), "inputs": {"text": "x" * 20_000}}
        with pytest.raises(InvalidValueError, match="limit is 10,000"):
            plog.append([big])
        assert plog.append([record(2)]) == 1
    assert read_predictions(folder=folder)["prediction_id"].tolist() == ["p2"]


def test_bad_arguments_and_a_closed_log(folder: Path) -> None:
    with pytest.raises(InvalidInputError, match="model name"):
        PredictionLog(folder, model="a/b")
    with pytest.raises(InvalidValueError, match="fsync"):
        PredictionLog(folder, model="churn", fsync="sometimes")  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError, match="segment_bytes"):
        PredictionLog(folder, model="churn", segment_bytes=0)
    with pytest.raises(InvalidValueError, match="segment_seconds"):
        PredictionLog(folder, model="churn", segment_seconds=-1)
    plog = PredictionLog(folder, model="churn", background=False)
    assert plog.append([]) == 0
    plog.close()
    plog.close()  # idempotent
    with pytest.raises(ConflictError, match="closed"):
        plog.append([record(1)])


def test_segments_roll_by_size_and_threads_lose_nothing(folder: Path) -> None:
    plog = PredictionLog(folder, model="churn", background=False, segment_bytes=4096)

    def write(thread: int) -> None:
        for i in range(100):
            plog.append([record(thread * 1000 + i)])

    threads = [threading.Thread(target=write, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    segments = list((folder / "spool" / "churn").glob("*.jsonl"))
    assert len(segments) > 10  # ~300 bytes a record: many rolls
    plog.close()
    ids = read_predictions(folder=folder)["prediction_id"]
    assert sorted(ids) == sorted(f"p{t * 1000 + i}" for t in range(4) for i in range(100))
    assert len(parquet_rows(folder)) == 400


def test_background_thread_fsyncs_rolls_and_compacts(folder: Path) -> None:
    with PredictionLog(
        folder, model="churn", fsync_interval=0.05, segment_seconds=0.1, compact_interval=0.05
    ) as plog:
        plog.append([record(1)])
        deadline = datetime.now(UTC) + timedelta(seconds=20)
        while list((folder / "spool" / "churn").glob("*.jsonl")):
            assert datetime.now(UTC) < deadline, "the segment was never compacted"
            threading.Event().wait(0.05)
        assert parquet_rows(folder)["prediction_id"].tolist() == ["p1"]
        plog.append([record(2)])  # a new segment after the roll
    assert read_predictions(folder=folder)["prediction_id"].tolist() == ["p1", "p2"]


def test_fsync_always(folder: Path) -> None:
    with PredictionLog(folder, model="churn", fsync="always", background=False) as plog:
        plog.append([record(1), record(2)])
        plog.flush()
    assert len(read_predictions(folder=folder)) == 2


def test_a_crash_between_rename_and_delete_duplicates_nothing(
    plog: PredictionLog, folder: Path, tmp_path: Path
) -> None:
    plog.append([record(i) for i in range(10)])
    segment = plog.segment
    assert segment is not None
    plog.rotate()
    saved = tmp_path / "saved.jsonl"
    shutil.copy(segment, saved)
    assert compact(folder) == 1
    shutil.copy(saved, segment)  # as if the process died after the rename, before the delete
    assert len(read_predictions(folder=folder)) == 10
    before = sorted((folder / "parquet").rglob("*.parquet"))
    assert compact(folder) == 1
    assert sorted((folder / "parquet").rglob("*.parquet")) == before
    assert len(parquet_rows(folder)) == 10
    assert read_predictions(folder=folder)["prediction_id"].tolist() == [f"p{i}" for i in range(10)]


def test_torn_and_corrupt_lines_are_set_aside(plog: PredictionLog, folder: Path) -> None:
    plog.append([record(1)])
    segment = plog.segment
    assert segment is not None
    plog.append([record(2)])
    plog.rotate()
    with segment.open("ab") as damaged:
        damaged.write(b'{"not": "a record"}\n[1, 2\n{"prediction_id": "p3", "ti')
    # A reader skips what does not parse; the torn tail may still be finishing.
    assert read_predictions(folder=folder)["prediction_id"].tolist() == ["p1", "p2"]
    assert compact(folder) == 1
    rejected = (folder / "rejected" / segment.name).read_bytes().splitlines()
    assert rejected == [b'{"not": "a record"}', b"[1, 2", b'{"prediction_id": "p3", "ti']
    assert read_predictions(folder=folder)["prediction_id"].tolist() == ["p1", "p2"]


def test_a_live_writers_segment_is_never_compacted(folder: Path) -> None:
    with (
        PredictionLog(folder, model="churn", background=False) as first,
        PredictionLog(folder, model="churn", background=False) as second,
    ):
        first.append([record(1)])
        second.append([record(2)])
        assert first.segment != second.segment
        assert compact(folder) == 0  # both held
        first.rotate()
        assert compact(folder) == 1
        second.append([record(3)])
        assert sorted(read_predictions(folder=folder)["prediction_id"]) == ["p1", "p2", "p3"]
    assert len(parquet_rows(folder)) == 3


WRITER = """
import sys
from datetime import UTC, datetime
from mloop.serving._prediction_log import PredictionLog

folder, name, batches = sys.argv[1], sys.argv[2], int(sys.argv[3])
log = PredictionLog(folder, model="churn", segment_bytes=20_000, compact_interval=0.2)
acknowledged = 0
for batch in range(batches):
    rows = [
        {"prediction_id": f"{name}-{acknowledged + i}", "time": datetime.now(UTC),
         "model": "churn", "version": 1, "inputs": {"x": acknowledged + i},
         "outputs": {"y": 1.0}, "latency_ms": 0.5, "shadow": False, "served_by": name}
        for i in range(7)
    ]
    log.append(rows)
    acknowledged += len(rows)
    print(acknowledged, flush=True)
log.close()
print("done", flush=True)
"""


def start_writer(folder: Path, name: str, batches: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(folder), name, str(batches)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.mark.slow
def test_sigkill_mid_stream_loses_no_acknowledged_record(folder: Path) -> None:
    writer = start_writer(folder, "w", 1_000_000)
    assert writer.stdout is not None
    acknowledged = 0
    for line in writer.stdout:
        acknowledged = int(line)
        if acknowledged >= 3000:  # several rolled and compacted segments, one open
            break
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=30)
    # Whatever it printed after our last read was acknowledged too; take the last number.
    for line in writer.stdout:
        acknowledged = max(acknowledged, int(line))
    writer.stdout.close()
    assert list((folder / "spool" / "churn").glob("*.jsonl")), "the open segment is left"
    # Restart: a new log replays (compacts) the dead writer's segments.
    with PredictionLog(folder, model="churn", background=False) as restarted:
        assert restarted.compact() >= 1
    assert list((folder / "spool" / "churn").glob("*.jsonl")) == []
    ids = parquet_rows(folder)["prediction_id"]
    assert ids.is_unique
    numbers = sorted(int(i.split("-")[1]) for i in ids)
    assert numbers[:acknowledged] == list(range(acknowledged))  # every acknowledged one
    assert len(numbers) < acknowledged + 7  # and at most the batch in flight beyond
    read = read_predictions(folder=folder, model="churn")
    assert read["prediction_id"].is_unique
    assert len(read) == len(ids)


@pytest.mark.slow
def test_concurrent_writer_processes_each_write_their_own_segments(folder: Path) -> None:
    writers = [start_writer(folder, f"w{n}", 60) for n in range(3)]
    for writer in writers:
        out, _ = writer.communicate(timeout=120)
        assert writer.returncode == 0
        assert out.split()[-2:] == ["420", "done"]
    frame = read_predictions(folder=folder)
    assert len(frame) == 3 * 420
    assert frame["prediction_id"].is_unique
    by_writer = frame.groupby("served_by")["prediction_id"].count().to_dict()
    assert by_writer == {"w0": 420, "w1": 420, "w2": 420}
    # Each parquet file comes from one writer's segment (its name carries the writer's pid).
    for path in (folder / "parquet").rglob("*.parquet"):
        assert pq.read_table(path).column("served_by").unique().to_pylist() in (
            ["w0"],
            ["w1"],
            ["w2"],
        )


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(inputs=st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_any_json_inputs_round_trip(tmp_path: Path, inputs: dict[str, Any]) -> None:
    folder = tmp_path / uuid.uuid4().hex
    with PredictionLog(folder, model="m", background=False) as plog:
        plog.append([{**record(1, model="m"), "inputs": inputs}])
        assert read_predictions(folder=folder).loc[0, "inputs"] == inputs
    assert read_predictions(folder=folder).loc[0, "inputs"] == json.loads(json.dumps(inputs))

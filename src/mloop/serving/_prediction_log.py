"""The prediction log: every prediction a server makes, kept on local disk without loss.

    with PredictionLog(folder, model="churn") as log:
        log.append([{"prediction_id": "...", "time": datetime.now(UTC), "model": "churn",
                     "version": 3, "inputs": {"age": 41}, "outputs": {"prediction": 1},
                     "latency_ms": 1.2, "shadow": False, "served_by": "host:8000"}])
    frame = read_predictions(model="churn", start="2026-12-01")

The folder (``settings.resolved_prediction_log()``, by default ``<home>/.mloop/predictions``)::

    spool/<model>/<segment>.jsonl        write-ahead segments (JSON Lines), one per writer
    parquet/model=<model>/date=<day>/<segment>.parquet    compacted: one per segment and UTC day
    rejected/<segment>.jsonl             lines of a dead segment that did not parse

**Durability.** ``append`` checks and encodes its records, then hands them to the kernel in one
``os.write`` on an ``O_APPEND`` descriptor: once it returns, a crash of the process (even
SIGKILL) loses none of them. A crash of the machine loses what the kernel had not written yet:
with ``fsync="interval"`` (the default) a background thread fsyncs the open segment every
``fsync_interval`` seconds (1 s), with ``"always"`` every append is fsynced before it returns
(slow), with ``"never"`` the kernel decides.

**Segments.** Each writer holds an exclusive ``flock`` on its open segment, so several processes
(uvicorn workers) log into one folder side by side, each into its own files. A segment is
closed when it passes ``segment_bytes`` or ``segment_seconds``, or when the log is closed; a
segment nobody holds a lock on is closed, whether its writer closed it or was killed. The
background thread of every open log compacts closed segments (any writer's, so a restart
replays what a killed process left): it rewrites each into Parquet files, one per model and
UTC day, named after the segment and renamed into place atomically, then deletes the segment.
Running it twice gives the same files, so a crash between the rename and the delete duplicates
nothing. ``read_predictions`` reads the Parquet files and the segments not yet compacted with
DuckDB, each record once.

**Values.** Inputs and outputs are stored as JSON. numpy scalars and arrays, datetimes, dates,
UUIDs and Decimals are converted; pandas' NA and NaT become null; NaN and infinities are kept
(as Python's JSON writes them). Any other value is refused at ``append`` with an
InvalidValueError naming the record and the key: nothing is stringified behind your back.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mloop.config import Settings, load_settings
from mloop.errors import ConflictError, InvalidInputError, InvalidValueError, StoreError
from mloop.store import check_model_name

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["PREDICTION_COLUMNS", "FsyncPolicy", "PredictionLog", "read_predictions"]

log = logging.getLogger("mloop.serving")

FsyncPolicy = Literal["always", "interval", "never"]
PREDICTION_COLUMNS = (
    "prediction_id",
    "time",
    "model",
    "version",
    "inputs",
    "outputs",
    "latency_ms",
    "shadow",
    "served_by",
)
_REQUIRED = ("prediction_id", "time", "inputs", "outputs")
_KEYS = frozenset(PREDICTION_COLUMNS)
SPOOL, PARQUET, REJECTED = "spool", "parquet", "rejected"
SEGMENT_SUFFIX = ".jsonl"
MAX_ID_LENGTH = 200


def _jsonable(value: Any) -> Any:
    """``json.dumps``' fallback: the few non-JSON types predictions carry, converted exactly."""
    if type(value).__name__ in ("NAType", "NaTType"):  # NaT is a datetime: check it first
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        return float(value)
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays, pandas Series
    if callable(tolist) and type(value).__module__.split(".")[0] in ("numpy", "pandas"):
        return tolist()
    raise TypeError(type(value).__name__)


def _find_unjsonable(value: Any, path: str) -> tuple[str, str] | None:
    """The first key path in ``value`` that JSON cannot hold, and the culprit's type."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str | int | float | bool) and key is not None:
                return f"{path} key {key!r}", type(key).__name__
            found = _find_unjsonable(item, f"{path}.{key}")
            if found is not None:
                return found
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _find_unjsonable(item, f"{path}[{index}]")
            if found is not None:
                return found
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return None
    try:
        _jsonable(value)
    except TypeError:
        return path, type(value).__name__
    return None


def _utc(value: Any, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidValueError(f"{what} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)  # naive times are taken as UTC, as everywhere in mloop
    return value.astimezone(UTC)


def _when(value: datetime | str | None, what: str) -> datetime | None:
    """A query bound: a datetime or an ISO-8601 string; naive values are UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidValueError(
                f"{what} {value!r} is not an ISO-8601 time, e.g. 2026-11-01 or 2026-11-01T12:00"
            ) from None
    return _utc(value, what)


def _segment_name() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    return f"{stamp}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PredictionLog:
    """A writer of one model server's predictions into the prediction log folder.

    ``append`` is cheap and thread-safe; ``close`` (or leaving the ``with`` block) closes the
    open segment and compacts it. Open one per process: a log carried across ``fork`` notices
    and starts a segment of its own in the child.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str] | None = None,
        *,
        model: str,
        fsync: FsyncPolicy = "interval",
        fsync_interval: float = 1.0,
        segment_bytes: int = 16 * 1024 * 1024,
        segment_seconds: float = 300.0,
        compact_interval: float = 5.0,
        max_record_bytes: int = 1024 * 1024,
        background: bool = True,
        settings: Settings | None = None,
    ) -> None:
        if fsync not in ("always", "interval", "never"):
            raise InvalidValueError(f"fsync must be 'always', 'interval' or 'never', not {fsync!r}")
        for name, number in (
            ("fsync_interval", fsync_interval),
            ("segment_seconds", segment_seconds),
            ("compact_interval", compact_interval),
        ):
            if isinstance(number, bool) or not isinstance(number, int | float) or number <= 0:
                raise InvalidValueError(f"{name} must be a positive number of seconds")
        for name, size in (
            ("segment_bytes", segment_bytes),
            ("max_record_bytes", max_record_bytes),
        ):
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise InvalidValueError(f"{name} must be a positive number of bytes")
        self.model = check_model_name(model)
        if folder is None:
            folder = (settings or load_settings()).resolved_prediction_log()
        self.folder = Path(folder)
        self.fsync: FsyncPolicy = fsync
        self.fsync_interval = float(fsync_interval)
        self.segment_bytes = segment_bytes
        self.segment_seconds = float(segment_seconds)
        self.compact_interval = float(compact_interval)
        self.max_record_bytes = max_record_bytes
        self.served_by = f"{socket.gethostname()}:{os.getpid()}"
        self._spool = self.folder / SPOOL / self.model
        try:
            self._spool.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(
                f"cannot create the prediction log folder {self._spool}: {error}; point the "
                "prediction_log setting at a writable folder"
            ) from error
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._pid = os.getpid()
        self._size = 0
        self._opened_at = 0.0
        self._dirty = False
        self._retired: list[int] = []  # closed segments' descriptors, fsynced off the hot path
        self._closed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(
                target=self._maintain_forever,
                name=f"mloop-prediction-log-{self.model}",
                daemon=True,
            )
            self._thread.start()

    def __repr__(self) -> str:
        return f"PredictionLog({str(self.folder)!r}, model={self.model!r})"

    @property
    def segment(self) -> Path | None:
        """The segment being written now, if one is open."""
        return self._path

    # -- writing ----------------------------------------------------------------------------

    def append(self, records: Sequence[Mapping[str, Any]]) -> int:
        """Log ``records`` (see the module docstring for the keys); returns how many.

        Every record is checked before any is written, so a bad one writes none; once this
        returns, a crash of the process loses none of them.
        """
        if isinstance(records, Mapping | str | bytes) or not isinstance(records, Sequence):
            raise InvalidValueError(
                f"records must be a list of dicts, not {type(records).__name__}"
            )
        data = b"".join(self._encode(index, record) for index, record in enumerate(records))
        if not data:
            return 0
        with self._lock:
            if self._closed:
                raise ConflictError(
                    f"the prediction log of {self.model!r} in {self.folder} is closed; open a new "
                    "PredictionLog to log more"
                )
            if self._fd is None or self._pid != os.getpid():
                self._open_segment()
            assert self._fd is not None
            assert self._path is not None
            try:
                written = os.write(self._fd, data)
                if written != len(data):
                    raise OSError(f"only {written} of {len(data)} bytes were written")
                if self.fsync == "always":
                    os.fsync(self._fd)
            except OSError as error:
                # The segment may end in a torn line now: start a clean one for what follows.
                path = self._path
                self._retire()
                raise StoreError(
                    f"cannot write to the prediction log segment {path}: {error}; free disk "
                    "space or point the prediction_log setting at another folder"
                ) from error
            self._size += len(data)
            self._dirty = True
            if self._size >= self.segment_bytes:
                self._retire()
        return len(records)

    def _encode(self, index: int, record: Mapping[str, Any]) -> bytes:
        if not isinstance(record, Mapping):
            raise InvalidValueError(
                f"prediction record {index} must be a dict, not {type(record).__name__}"
            )
        missing = [key for key in _REQUIRED if key not in record]
        if missing:
            raise InvalidValueError(
                f"prediction record {index} lacks {', '.join(map(repr, missing))}; every record "
                f"needs {', '.join(_REQUIRED)}"
            )
        unknown = sorted(str(key) for key in record if key not in _KEYS)
        if unknown:
            raise InvalidValueError(
                f"prediction record {index} has unknown keys {unknown[:5]}; the keys are "
                f"{', '.join(PREDICTION_COLUMNS)}"
            )
        prediction_id = record["prediction_id"]
        if isinstance(prediction_id, uuid.UUID):
            prediction_id = str(prediction_id)
        if not isinstance(prediction_id, str) or not 0 < len(prediction_id) <= MAX_ID_LENGTH:
            raise InvalidValueError(
                f"prediction record {index}: prediction_id must be a string of 1-{MAX_ID_LENGTH} "
                f"characters, not {type(prediction_id).__name__}"
            )
        moment = _utc(record["time"], f"prediction record {index}: time")
        model = record.get("model", self.model)
        try:
            model = check_model_name(model)
        except InvalidInputError as error:
            raise InvalidValueError(f"prediction record {index}: {error}") from None
        version = record.get("version")
        if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
            raise InvalidValueError(
                f"prediction record {index}: version must be an int or None, not "
                f"{type(version).__name__}"
            )
        latency = record.get("latency_ms")
        if latency is not None and (
            isinstance(latency, bool) or not isinstance(latency, int | float)
        ):
            raise InvalidValueError(
                f"prediction record {index}: latency_ms must be a number or None, not "
                f"{type(latency).__name__}"
            )
        shadow = record.get("shadow", False)
        if not isinstance(shadow, bool):
            raise InvalidValueError(
                f"prediction record {index}: shadow must be true or false, not "
                f"{type(shadow).__name__}"
            )
        served_by = record.get("served_by", self.served_by)
        if not isinstance(served_by, str):
            raise InvalidValueError(
                f"prediction record {index}: served_by must be a string, not "
                f"{type(served_by).__name__}"
            )
        for key in ("inputs", "outputs"):
            if not isinstance(record[key], Mapping):
                raise InvalidValueError(
                    f"prediction record {index}: {key} must be a dict of column -> value, not "
                    f"{type(record[key]).__name__}"
                )
        body = {
            "prediction_id": prediction_id,
            "time": moment.isoformat(),
            "model": model,
            "version": version,
            "inputs": record["inputs"],
            "outputs": record["outputs"],
            "latency_ms": None if latency is None else float(latency),
            "shadow": shadow,
            "served_by": served_by,
        }
        try:
            line = json.dumps(body, default=_jsonable, separators=(",", ":")).encode("ascii")
        except (TypeError, ValueError) as error:
            found = _find_unjsonable(record["inputs"], "inputs") or _find_unjsonable(
                record["outputs"], "outputs"
            )
            where, kind = found if found is not None else ("a value", str(error))
            raise InvalidValueError(
                f"prediction record {index}: {where} is of type {kind}, which the prediction log "
                "cannot store; convert it to a number, string, bool, list or dict"
            ) from None
        if len(line) >= self.max_record_bytes:
            raise InvalidValueError(
                f"prediction record {index} is {len(line):,} bytes as JSON; the limit is "
                f"{self.max_record_bytes:,} (max_record_bytes): log fewer or smaller inputs"
            )
        return line + b"\n"

    def _open_segment(self) -> None:
        """Start a new segment: created under a temporary name, locked, then renamed, so that
        no compactor can take it for a dead writer's."""
        if self._fd is not None and self._pid != os.getpid():
            # Forked: the descriptor (and its lock) is the parent's; leave it to the parent.
            self._fd, self._retired = None, []
        self._pid = os.getpid()
        self.served_by = f"{socket.gethostname()}:{self._pid}"
        name = _segment_name()
        temporary = self._spool / f".{name}.tmp"
        final = self._spool / f"{name}{SEGMENT_SUFFIX}"
        try:
            self._spool.mkdir(parents=True, exist_ok=True)
            fd = os.open(temporary, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.rename(temporary, final)
            except BaseException:
                os.close(fd)
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        except OSError as error:
            raise StoreError(
                f"cannot start a prediction log segment in {self._spool}: {error}; point the "
                "prediction_log setting at a writable folder"
            ) from error
        self._fd, self._path = fd, final
        self._size, self._opened_at, self._dirty = 0, time.monotonic(), False

    def _retire(self) -> None:
        """Close the open segment for writing (call with the lock held); the background
        thread fsyncs and releases it, which makes it compactable."""
        if self._fd is not None:
            self._retired.append(self._fd)
        self._fd, self._path, self._size, self._dirty = None, None, 0, False

    def _release_retired(self) -> None:
        with self._lock:
            retired, self._retired = self._retired, []
        for fd in retired:
            try:
                if self.fsync != "never":
                    os.fsync(fd)
            except OSError as error:  # pragma: no cover - a failing disk
                log.warning("could not fsync a prediction log segment: %s", error)
            finally:
                os.close(fd)

    def flush(self) -> None:
        """fsync the open segment now (whatever the policy)."""
        with self._lock:
            fd = None if self._fd is None else os.dup(self._fd)
            self._dirty = False
        if fd is not None:
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def rotate(self) -> None:
        """Close the open segment (a new one starts with the next append)."""
        with self._lock:
            self._retire()
        self._release_retired()

    # -- background -------------------------------------------------------------------------

    def _maintain_forever(self) -> None:
        tick = min(self.fsync_interval, self.compact_interval, 1.0)
        next_compaction = 0.0
        while not self._stop.wait(tick):
            try:
                with self._lock:
                    if (
                        self._fd is not None
                        and self._pid == os.getpid()
                        and time.monotonic() - self._opened_at >= self.segment_seconds
                    ):
                        self._retire()
                    dirty = self._dirty and self.fsync == "interval" and self._fd is not None
                if dirty:
                    self.flush()
                self._release_retired()
                if time.monotonic() >= next_compaction:
                    compact(self.folder)
                    next_compaction = time.monotonic() + self.compact_interval
            except Exception:  # a bad segment must not stop the thread; it is logged
                log.exception("prediction log maintenance in %s failed", self.folder)

    def compact(self) -> int:
        """Compact every closed segment in the folder now; returns how many were compacted."""
        self._release_retired()
        return compact(self.folder)

    def close(self) -> None:
        """Close the open segment, stop the background thread and compact what is closed."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._pid == os.getpid():
                self._retire()
            else:
                self._fd = None
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._release_retired()
        try:
            compact(self.folder)
        except (OSError, StoreError) as error:  # the segments stay and are compacted later
            log.warning("could not compact the prediction log in %s: %s", self.folder, error)

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- segments -> rows -------------------------------------------------------------------------


@dataclass
class _Parsed:
    rows: list[dict[str, Any]]
    bad: list[bytes]


def _parse_segment(data: bytes, segment: str, *, complete: bool) -> _Parsed:
    """The records of a segment's bytes, numbered by line. A last line without its newline is
    a write that never finished: skipped while the writer may still finish it, rejected once
    the writer is gone (``complete``)."""
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the data ends in a newline
    parsed = _Parsed([], [])
    for seq, line in enumerate(lines):
        try:
            body = json.loads(line)
            row = {
                "segment": segment,
                "seq": seq,
                "prediction_id": str(body["prediction_id"]),
                "time": datetime.fromisoformat(body["time"]).astimezone(UTC),
                "model": str(body["model"]),
                "version": body["version"],
                "inputs": json.dumps(body["inputs"], separators=(",", ":")),
                "outputs": json.dumps(body["outputs"], separators=(",", ":")),
                "latency_ms": body["latency_ms"],
                "shadow": bool(body["shadow"]),
                "served_by": str(body["served_by"]),
            }
            check_model_name(row["model"])
            if row["version"] is not None and not isinstance(row["version"], int):
                raise TypeError("version")
        except (ValueError, KeyError, TypeError, AttributeError):
            parsed.bad.append(line)
            continue
        parsed.rows.append(row)
    if tail and complete:
        parsed.bad.append(tail)
    return parsed


def _schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            ("segment", pa.string()),
            ("seq", pa.int64()),
            ("prediction_id", pa.string()),
            ("time", pa.timestamp("us", tz="UTC")),
            ("model", pa.string()),
            ("version", pa.int64()),
            ("inputs", pa.string()),
            ("outputs", pa.string()),
            ("latency_ms", pa.float64()),
            ("shadow", pa.bool_()),
            ("served_by", pa.string()),
        ]
    )


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    import pyarrow as pa

    return pa.Table.from_pylist(rows, schema=_schema())


def _write_atomic(path: Path, write: Any) -> None:
    """``write(tmp)`` then fsync and rename into ``path``: readers see all of it or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(temporary)
        fd = os.open(temporary, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
        _fsync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _compact_segment(root: Path, path: Path) -> bool:
    """Rewrite one closed segment as Parquet and delete it; False if a writer still holds it."""
    import pyarrow.parquet as pq

    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False  # compacted by another process a moment ago
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a live writer, or another compactor
        try:
            now = os.stat(path)
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        if (now.st_dev, now.st_ino) != (held.st_dev, held.st_ino):
            return False  # deleted and replaced while we waited
        with os.fdopen(os.dup(fd), "rb") as source:
            data = source.read()
        segment = path.name.removesuffix(SEGMENT_SUFFIX)
        parsed = _parse_segment(data, segment, complete=True)
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in parsed.rows:
            groups.setdefault((row["model"], row["time"].date().isoformat()), []).append(row)
        for (model, day), rows in sorted(groups.items()):
            target = root / PARQUET / f"model={model}" / f"date={day}" / f"{segment}.parquet"
            table = _table(rows)
            _write_atomic(target, lambda tmp, table=table: pq.write_table(table, tmp))
        if parsed.bad:
            log.warning(
                "prediction log segment %s has %d line(s) that do not parse; kept in %s",
                path,
                len(parsed.bad),
                root / REJECTED,
            )
            rejected = b"".join(line + b"\n" for line in parsed.bad)
            _write_atomic(root / REJECTED / path.name, lambda tmp: tmp.write_bytes(rejected))
        os.unlink(path)
        _fsync_dir(path.parent)
        return True
    finally:
        os.close(fd)


def _segments(root: Path) -> Iterator[Path]:
    spool = root / SPOOL
    if spool.is_dir():
        yield from sorted(spool.glob(f"*/*{SEGMENT_SUFFIX}"))


def compact(folder: str | os.PathLike[str]) -> int:
    """Compact every closed segment under ``folder``; returns how many were compacted."""
    root = Path(folder)
    return sum(_compact_segment(root, path) for path in _segments(root))


# -- reading ----------------------------------------------------------------------------------


def _parquet_files(
    root: Path, model: str | None, start: datetime | None, end: datetime | None
) -> list[Path]:
    """The compacted files that can hold matching rows (partitions pruned by model and day)."""
    base = root / PARQUET
    if not base.is_dir():
        return []
    models = [base / f"model={model}"] if model is not None else sorted(base.glob("model=*"))
    first = None if start is None else start.date()
    last = None if end is None else end.date()
    files: list[Path] = []
    for folder in models:
        for day_folder in sorted(folder.glob("date=*")):
            try:
                day = date.fromisoformat(day_folder.name.removeprefix("date="))
            except ValueError:
                continue
            if (first is not None and day < first) or (last is not None and day > last):
                continue
            files.extend(sorted(day_folder.glob("*.parquet")))
    return files


def read_predictions(
    model: str | None = None,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    folder: str | os.PathLike[str] | None = None,
    *,
    settings: Settings | None = None,
) -> pd.DataFrame:
    """The logged predictions, oldest first: of ``model`` (default: every model), with
    ``start <= time < end`` (ISO-8601 strings or datetimes; naive means UTC).

    Columns: prediction_id, time (UTC), model, version, inputs and outputs (dicts), latency_ms,
    shadow, served_by. Compacted Parquet files and segments not compacted yet are both read,
    each record once. ``pandas.json_normalize(frame["inputs"])`` gives one column per input.
    """
    import duckdb
    import pandas as pd

    if model is not None:
        model = check_model_name(model)
    first, last = _when(start, "start"), _when(end, "end")
    if first is not None and last is not None and last <= first:
        raise InvalidValueError(f"end ({last.isoformat()}) must be after start")
    root = (
        Path(folder)
        if folder is not None
        else (settings or load_settings()).resolved_prediction_log()
    )

    spool_rows: list[dict[str, Any]] = []
    for path in _segments(root):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue  # compacted while we listed
        segment = path.name.removesuffix(SEGMENT_SUFFIX)
        spool_rows.extend(_parse_segment(data, segment, complete=False).rows)
    files = _parquet_files(root, model, first, last)

    where: list[str] = ["TRUE"]
    params: list[Any] = []
    if model is not None:
        where.append("model = ?")
        params.append(model)
    if first is not None:
        where.append("time >= ?")
        params.append(first)
    if last is not None:
        where.append("time < ?")
        params.append(last)
    condition = " AND ".join(where)
    columns = ", ".join(PREDICTION_COLUMNS)
    parts, arguments = [], []
    connection = duckdb.connect()
    try:
        connection.execute("SET TimeZone = 'UTC'")
        if files:
            names = [str(path) for path in files]
            parts.append(f"SELECT {columns}, segment, seq FROM read_parquet(?) WHERE {condition}")
            arguments += [names, *params]
        if spool_rows:
            connection.register("spool", _table(spool_rows))
            # A segment compacted after it was read above is in both: keep the Parquet copy.
            compacted = [str(p) for p in files if p.stem in {r["segment"] for r in spool_rows}]
            anti = ""
            if compacted:
                anti = (
                    " AND NOT EXISTS (SELECT 1 FROM read_parquet(?) AS p "
                    "WHERE p.segment = s.segment AND p.seq = s.seq)"
                )
            parts.append(f"SELECT {columns}, segment, seq FROM spool AS s WHERE {condition}{anti}")
            arguments += [*params, *([compacted] if compacted else [])]
        if not parts:  # nothing logged: the same query over no rows gives the same dtypes
            connection.register("spool", _table([]))
            parts.append(f"SELECT {columns}, segment, seq FROM spool")
        query = " UNION ALL ".join(parts) + " ORDER BY time, segment, seq"
        frame = connection.execute(query, arguments).df()
    except duckdb.Error as error:
        raise StoreError(
            f"cannot read the prediction log in {root}: {error}; a file there may be damaged"
        ) from error
    finally:
        connection.close()
    frame = frame.drop(columns=["segment", "seq"]).reset_index(drop=True)
    for column in ("prediction_id", "model", "served_by"):
        frame[column] = frame[column].astype(str)
    for column in ("inputs", "outputs"):
        frame[column] = pd.Series([json.loads(text) for text in frame[column]], dtype=object)
    frame["version"] = frame["version"].astype("Int64")
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    return frame

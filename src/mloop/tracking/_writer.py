"""The background metric writer: ``log_metric`` appends to memory, a thread writes batches.

One writer per store per process. Rows are written in batches every ``interval`` seconds or
when ``batch_size`` rows are waiting, and synchronously by :meth:`MetricWriter.flush`, which
``Run.end`` and the interpreter's exit call, so nothing logged is lost on a normal end or an
exception. A failed batch stays buffered and is retried; the next flush raises the error.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

from mloop.errors import NotFoundError, RunNotActiveError
from mloop.store import MetricRow, Store

BATCH_SIZE = 20_000
WAKE_EVERY = 2_000
# Past this many waiting rows (the database is slow or down) the logging thread writes itself.
MAX_BUFFERED = 1_000_000


class MetricWriter:
    """Buffers metric rows for one store and writes them from a daemon thread."""

    def __init__(self, store: Store, *, interval: float = 0.5, batch_size: int = BATCH_SIZE):
        self.store = store
        self.interval = interval
        self.batch_size = batch_size
        self._buffer: list[MetricRow] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # run id -> (rows dropped, why): rows whose run ended before they could be written.
        self.lost: dict[str, tuple[int, str]] = {}

    def add(self, row: MetricRow) -> None:
        """Queue one row; returns at once (the thread or the next flush writes it)."""
        with self._lock:
            self._buffer.append(row)
            waiting = len(self._buffer)
        self._queued(waiting - 1, waiting)

    def add_many(self, rows: list[MetricRow]) -> None:
        """Queue several rows at once."""
        with self._lock:
            before = len(self._buffer)
            self._buffer.extend(rows)
            waiting = len(self._buffer)
        self._queued(before, waiting)

    def _queued(self, before: int, waiting: int) -> None:
        if self._thread is None:
            self._start()
        if waiting // WAKE_EVERY > before // WAKE_EVERY:
            # A burst is under way: write what is there now instead of at the next tick, so
            # the database work overlaps the logging (sqlite3 releases the GIL while it works).
            self._wake.set()
            if waiting >= MAX_BUFFERED:
                self.flush()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._loop, name="mloop-metric-writer", daemon=True
            )
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            # A failed write keeps its rows buffered; the next flush (run end, exit) raises.
            with contextlib.suppress(Exception):
                self.flush()

    def pending(self) -> int:
        """How many rows wait to be written."""
        with self._lock:
            return len(self._buffer)

    def flush(self) -> None:
        """Write every buffered row now; raises the store's error if it cannot (rows are kept).

        Rows of a run that has ended or vanished can never be written: they are dropped, and
        counted in :attr:`lost`, instead of blocking the rows of every other run.
        """
        self.flush_with(None)

    def flush_with(self, finish: Callable[[list[MetricRow]], None] | None) -> None:
        """Write every buffered row; the last batch goes to ``finish`` if one is given.

        ``finish`` writes rows in a transaction of its own (``Run.end`` ends the run in the
        same transaction as its last metrics). Rows that could not be written go back into
        the buffer and the error is raised.
        """
        with self._write_lock:
            with self._lock:
                batch, self._buffer = self._buffer, []
            done = 0
            try:
                while len(batch) - done > (0 if finish is None else self.batch_size):
                    chunk = batch[done : done + self.batch_size]
                    self._write(chunk)
                    done += len(chunk)
                if finish is not None:
                    rest = batch[done:]
                    try:
                        finish(rest)
                    except (RunNotActiveError, NotFoundError):
                        if not rest:
                            raise
                        self._write(rest)  # drops rows of runs that ended elsewhere
                        done = len(batch)
                        finish([])
                    done = len(batch)
            except BaseException:
                with self._lock:
                    self._buffer[:0] = batch[done:]
                raise

    def _write(self, chunk: list[MetricRow]) -> None:
        try:
            self.store.log_metrics(chunk)
        except (RunNotActiveError, NotFoundError):
            self._write_per_run(chunk)

    def _write_per_run(self, chunk: list[MetricRow]) -> None:
        by_run: dict[str, list[MetricRow]] = {}
        for row in chunk:
            by_run.setdefault(row[0], []).append(row)
        for run_id, rows in by_run.items():
            try:
                self.store.log_metrics(rows)
            except (RunNotActiveError, NotFoundError) as error:
                self.lost[run_id] = (self.lost.get(run_id, (0, ""))[0] + len(rows), str(error))

    def stop(self) -> None:
        """Flush and stop the thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self.flush()

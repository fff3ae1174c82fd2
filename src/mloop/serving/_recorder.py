"""Hands scored batches to the prediction log.

Write-ahead (the default): the model's worker thread appends a batch's records before the
batch's responses are released, so every prediction a client received is in the log's spool
(one ``os.write`` to an ``O_APPEND`` file: it survives the server being killed). The event loop
never waits on it; a batch's responses wait for one buffered append.

Background (``write_ahead=False``): the worker only puts a reference on a queue and a thread of
its own appends, so not even the batch waits, but a server killed between answering and
appending loses those records. For a sink that may stall (a network file system).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from mloop.serving._batcher import Item, Scored
from mloop.serving._served import ServedModel

__all__ = ["PredictionSink", "Recorder"]

log = logging.getLogger("mloop.serving")


class PredictionSink(Protocol):
    """What the server writes predictions to (``mloop.serving.PredictionLog`` is one)."""

    def append(self, records: Sequence[Mapping[str, Any]]) -> object: ...
    def close(self) -> None: ...


_Batch = tuple[str, ServedModel, list[Item], list["Scored | Exception"], datetime, float]


class Recorder:
    """One thread writing records to the sink of each model name (``open_sink(name)``)."""

    def __init__(
        self, open_sink: Callable[[str], PredictionSink], *, write_ahead: bool = True
    ) -> None:
        self._open_sink = open_sink
        self._sinks: dict[str, PredictionSink] = {}
        self.write_ahead = write_ahead
        self._lock = threading.Lock()  # batchers of several slots call in from their threads
        self._queue: queue.SimpleQueue[_Batch | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="mloop-prediction-log", daemon=True)
        self._thread.start()
        self.written = 0
        self.failed = 0

    def __call__(
        self, role: str, served: ServedModel, items: list[Item], results: list[Scored | Exception]
    ) -> None:
        """The batcher's hook, called in the model's worker thread before responses go out."""
        batch = (role, served, items, results, datetime.now(UTC), time.perf_counter())
        if not self.write_ahead:
            self._queue.put(batch)
            return
        with self._lock:
            self._guarded(batch)

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            with self._lock:
                self._guarded(batch)

    def _guarded(self, batch: _Batch) -> None:
        try:
            self._write(*batch)
        except Exception as error:  # noqa: BLE001 - a broken log must not stop serving
            self.failed += 1
            log.warning("could not write predictions to the prediction log: %s", error)

    def _write(
        self,
        role: str,
        served: ServedModel,
        items: list[Item],
        results: list[Scored | Exception],
        when: datetime,
        done: float,
    ) -> None:
        records: list[dict[str, Any]] = []
        for item, result in zip(items, results, strict=True):
            if isinstance(result, Exception):
                continue
            inputs = item.inputs if item.inputs is not None else item.columns
            names = list(inputs)
            latency = (done - item.started) * 1000
            proba = result.outputs.probabilities
            for row, prediction_id in enumerate(result.ids):
                outputs: dict[str, Any] = {"prediction": result.outputs.predictions[row]}
                if proba is not None:
                    outputs["probabilities"] = proba[row]
                records.append(
                    {
                        "prediction_id": prediction_id,
                        "time": when,
                        "model": served.name,
                        "version": served.version,
                        "inputs": {name: inputs[name][row] for name in names},
                        "outputs": outputs,
                        "latency_ms": latency,
                        "shadow": role == "shadow",
                        "served_by": item.origin,
                    }
                )
        if not records:
            return
        sink = self._sinks.get(served.name)
        if sink is None:
            sink = self._sinks[served.name] = self._open_sink(served.name)
        sink.append(records)
        self.written += len(records)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then close every sink."""
        self._queue.put(None)
        self._thread.join(timeout)
        for sink in self._sinks.values():
            try:
                sink.close()
            except Exception as error:  # noqa: BLE001  # pragma: no cover - reported at shutdown
                log.warning("closing the prediction log failed: %s", error)
        self._sinks.clear()

"""Adaptive micro-batching: concurrent requests scored together by one predict call.

Requests wait in an asyncio queue; one task takes what is queued (up to ``max_batch`` rows)
and scores it as one DataFrame in the model's own worker thread. While a batch is scored, the
next requests pile up and form the next batch, so batches grow with concurrency and a lone
request waits for nobody. ``max_wait_ms`` lets a batch wait that long for more rows, but only
while traffic is concurrent (the previous batch had more than one request).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from mloop.serving._payload import Columns, PayloadError
from mloop.serving._served import ModelSlot, Outputs, ServedModel, explain
from mloop.store import new_id

__all__ = ["Batcher", "Scored"]

MAX_QUEUE = 4096  # requests waiting per model before the server says it is overloaded


@dataclass(frozen=True)
class Scored:
    """One request's share of a batch: the version that scored it, its outputs and ids."""

    served: ServedModel
    outputs: Outputs
    ids: list[str]


@dataclass
class Item:
    columns: Columns
    rows: int
    future: asyncio.Future[Scored] | None
    started: float = field(default_factory=time.perf_counter)
    inputs: Columns | None = None  # what the log records (with looked-up features)
    origin: str = "primary"  # the role that answered the client (for shadow copies too)
    checked_by: ServedModel | None = None  # the version ``columns`` was checked against


# (role, served, items, results): called in the worker thread after a batch, must be cheap
BatchHook = Callable[[str, ServedModel, list[Item], list[Scored | Exception]], None]


class Batcher:
    """Scores requests for one model slot, a batch at a time."""

    def __init__(
        self,
        slot: ModelSlot,
        *,
        max_batch: int,
        max_wait_ms: float,
        observe: Callable[[str, ServedModel, int], None],
        after: BatchHook | None = None,
    ) -> None:
        self.slot = slot
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self._observe = observe
        self._after = after
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"mloop-{slot.role}")
        self._queue: asyncio.Queue[Item] | None = None
        self._task: asyncio.Task[None] | None = None
        self._held: Item | None = None
        self._last_requests = 1

    def _ensure(self) -> asyncio.Queue[Item]:
        if self._queue is None or self._task is None or self._task.done():
            self._queue = asyncio.Queue(MAX_QUEUE)
            self._task = asyncio.get_running_loop().create_task(self._run())
        return self._queue

    def submit_nowait(
        self,
        columns: Columns,
        rows: int,
        *,
        inputs: Columns | None = None,
        origin: str,
        checked_by: ServedModel | None = None,
    ) -> bool:
        """Queue a request whose result nobody waits for (shadow traffic); False if full."""
        queue = self._ensure()
        try:
            queue.put_nowait(
                Item(columns, rows, None, inputs=inputs, origin=origin, checked_by=checked_by)
            )
        except asyncio.QueueFull:
            return False
        return True

    async def submit(
        self,
        columns: Columns,
        rows: int,
        *,
        inputs: Columns | None = None,
        checked_by: ServedModel | None = None,
    ) -> Scored:
        """Score one request's rows (in whichever batch it lands in)."""
        queue = self._ensure()
        future: asyncio.Future[Scored] = asyncio.get_running_loop().create_future()
        try:
            queue.put_nowait(
                Item(
                    columns,
                    rows,
                    future,
                    inputs=inputs,
                    origin=self.slot.role,
                    checked_by=checked_by,
                )
            )
        except asyncio.QueueFull:
            raise PayloadError(
                503, f"{queue.qsize()} requests are waiting; the server is overloaded, retry"
            ) from None
        return await future

    async def _next_batch(self, queue: asyncio.Queue[Item]) -> list[Item]:
        first = self._held or await queue.get()
        self._held = None
        batch, rows = [first], first.rows
        deadline = None
        while rows < self.max_batch:
            try:
                item = queue.get_nowait()
            except asyncio.QueueEmpty:
                if self.max_wait <= 0 or self._last_requests <= 1:
                    break
                now = time.perf_counter()
                deadline = deadline or now + self.max_wait
                if now >= deadline:
                    break
                try:
                    item = await asyncio.wait_for(queue.get(), deadline - now)
                except TimeoutError:
                    break
            if rows + item.rows > self.max_batch:
                self._held = item
                break
            batch.append(item)
            rows += item.rows
        self._last_requests = len(batch)
        return batch

    async def _run(self) -> None:
        assert self._queue is not None
        queue = self._queue
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch(queue)
            try:
                results = await loop.run_in_executor(self._executor, self._score, batch)
            except Exception as error:  # noqa: BLE001 - executor shut down: fail the waiting requests
                results = [error] * len(batch)
            for item, result in zip(batch, results, strict=True):
                future = item.future
                if future is None or future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    def _score(self, batch: list[Item]) -> list[Scored | Exception]:
        served = self.slot.current  # the whole batch is scored by one version
        for item in batch:
            if item.checked_by is not None and item.checked_by is not served:
                self._recheck(served, item)  # swapped since: the new version may differ
        fine = [served.plausible(item.columns) for item in batch]
        good = [item for item, ok in zip(batch, fine, strict=True) if ok]
        scored: list[Scored | Exception] = []
        if good:
            try:
                scored = self._score_together(served, good)
            except Exception:  # noqa: BLE001 - re-scored one by one: one bad request
                scored = [self._one(served, item) for item in good]  # must not fail the others
        ordered = iter(scored)
        results = [
            next(ordered) if ok else self._refusal(served, item)
            for item, ok in zip(batch, fine, strict=True)
        ]
        if self._after is not None:
            self._after(self.slot.role, served, batch, results)
        return results

    def _score_together(self, served: ServedModel, batch: list[Item]) -> list[Scored | Exception]:
        if len(batch) == 1:
            columns = batch[0].columns
        else:
            names = list(batch[0].columns)
            if any(list(item.columns) != names for item in batch):
                raise ValueError("requests with different columns")  # scored one by one
            columns = {name: [v for item in batch for v in item.columns[name]] for name in names}
        outputs = served.predict(columns)
        self._observe(self.slot.role, served, sum(item.rows for item in batch))
        results: list[Scored | Exception] = []
        start = 0
        for item in batch:
            end = start + item.rows
            proba = outputs.probabilities
            results.append(
                Scored(
                    served,
                    Outputs(
                        outputs.predictions[start:end],
                        None if proba is None else proba[start:end],
                    ),
                    [new_id() for _ in range(item.rows)],
                )
            )
            start = end
        return results

    @staticmethod
    def _recheck(served: ServedModel, item: Item) -> None:
        with contextlib.suppress(PayloadError):  # else the refusal names what it lacks
            item.columns = served.check_columns(item.inputs or item.columns)
        item.checked_by = served

    def _one(self, served: ServedModel, item: Item) -> Scored | Exception:
        try:
            return self._score_together(served, [item])[0]
        except Exception:  # noqa: BLE001 - the refusal names the error
            return self._refusal(served, item)

    @staticmethod
    def _refusal(served: ServedModel, item: Item) -> Exception:
        try:
            served.predict(item.columns)
        except Exception as error:  # noqa: BLE001 - a model's error on this input is the caller's
            return PayloadError(422, explain(error))
        return PayloadError(422, "the input could not be scored")  # pragma: no cover

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        waiting = [self._held] if self._held is not None else []
        while self._queue is not None and not self._queue.empty():
            waiting.append(self._queue.get_nowait())
        for item in waiting:
            if item.future is not None and not item.future.done():
                item.future.set_exception(PayloadError(503, "the server is shutting down"))
        self._executor.shutdown(wait=False, cancel_futures=True)

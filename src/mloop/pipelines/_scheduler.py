"""The scheduler: runs pipelines on their cron slots and when their triggers fire.

One ``tick`` is one pass: renew the leases of the slots this scheduler is running, take over
slots whose scheduler died (lease run out), claim the cron slots due since the last check (per
the catch-up policy), and check the event triggers. Claimed slots run on worker threads, one
run at a time per pipeline, so a long pipeline never holds up ticking.

Every decision is recorded in the metadata store (``store.schedules``), so any number of
schedulers, or one restarted, share the work without running a slot twice:

>>> scheduler = Scheduler(load_pipelines("."), store=store)    # doctest: +SKIP
>>> scheduler.serve_forever()                                   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import signal
import socket
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Literal, Protocol

from mloop.backends import backends
from mloop.errors import InvalidValueError, MloopError
from mloop.pipelines._schedule import Schedule, to_slot_ms
from mloop.pipelines._triggers import Trigger, TriggerContext
from mloop.store import SlotRecord, Store, from_ms

__all__ = ["Fired", "SchedulablePipeline", "Scheduled", "Scheduler", "TickReport"]

log = logging.getLogger("mloop.scheduler")

MAX_KEY = 256  # schedule_slots.schedule / trigger_cursors.trigger


class _RunResult(Protocol):
    @property
    def run_id(self) -> str | None: ...

    @property
    def status(self) -> str: ...


class SchedulablePipeline(Protocol):
    """What the scheduler needs of a pipeline (``mloop.pipelines.Pipeline`` has it)."""

    @property
    def name(self) -> str: ...

    @property
    def schedule(self) -> str | Schedule | None: ...

    @property
    def catchup(self) -> str: ...

    @property
    def triggers(self) -> tuple[object, ...]: ...

    def run(
        self,
        *,
        tags: Mapping[str, str] | None = None,
        raise_on_error: bool = True,
        store: Store | None = None,
    ) -> _RunResult: ...


def utc_now() -> datetime:
    """The current time, aware, in UTC (the default clock)."""
    return datetime.now(UTC)


def _fit(key: str) -> str:
    """``key`` cut to the store's 256 characters, kept unique by a digest of the whole."""
    if len(key) <= MAX_KEY:
        return key
    return key[: MAX_KEY - 17] + "~" + hashlib.sha256(key.encode()).hexdigest()[:16]


def _position(ms: int) -> str:
    return f"{ms:015d}"


@dataclass(frozen=True)
class Scheduled:
    """One pipeline as the scheduler sees it: its schedule and triggers, keyed for the store."""

    pipeline: SchedulablePipeline
    schedule: Schedule | None
    triggers: tuple[tuple[str, Trigger], ...]  # (store key, trigger)

    @property
    def name(self) -> str:
        return self.pipeline.name

    @property
    def cron_cursor(self) -> str:
        return _fit(f"cron:{self.name}")


@dataclass(frozen=True)
class Fired:
    """A slot this scheduler claimed and queued: a cron time, or a trigger's firing."""

    pipeline: str
    schedule: str  # the store key of the slot
    slot: datetime
    reason: str  # "cron", "catch-up", "retry", or the trigger's description


@dataclass
class TickReport:
    """What one pass did."""

    now: datetime
    fired: list[Fired] = field(default_factory=list)
    skipped: list[tuple[str, datetime]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    first_look: list[str] = field(default_factory=list)  # schedules and triggers seen anew


@dataclass
class _Job:
    fired: Fired
    pipeline: SchedulablePipeline
    tags: dict[str, str]
    lease_until_ms: int
    started: bool = False


def _schedule_of(pipeline: SchedulablePipeline) -> Schedule | None:
    value = getattr(pipeline, "schedule", None)
    if value is None or isinstance(value, Schedule):
        return value
    return Schedule(value, catchup=getattr(pipeline, "catchup", "latest"))


def _scheduled(pipeline: object) -> Scheduled:
    name = getattr(pipeline, "name", None)
    if not isinstance(name, str) or not name or not callable(getattr(pipeline, "run", None)):
        raise InvalidValueError(
            f"the scheduler runs pipelines (made with @pipeline), not {type(pipeline).__name__}"
        )
    try:
        schedule = _schedule_of(pipeline)  # type: ignore[arg-type]
    except InvalidValueError as error:
        raise InvalidValueError(f"pipeline {name!r}: {error}") from None
    triggers: list[tuple[str, Trigger]] = []
    for trigger in getattr(pipeline, "triggers", ()) or ():
        if not all(hasattr(trigger, a) for a in ("key", "check", "describe")):
            raise InvalidValueError(
                f"pipeline {name!r}: trigger {trigger!r} is not a trigger; use on_new_data(...), "
                "on_alert(...) or on_alias_changed(...) from mloop.pipelines"
            )
        triggers.append((_fit(f"{name}:{trigger.key}"), trigger))
    return Scheduled(pipeline, schedule, tuple(triggers))  # type: ignore[arg-type]


class Scheduler:
    """Runs pipelines on their cron schedules and triggers; safe to run several at once.

    ``clock`` gives the current time (aware); tests pass a fake one and call :meth:`tick`.
    ``lease`` is how long a claimed slot stays this scheduler's without a renewal (each tick
    renews it): a scheduler that dies mid-run delays its slots by at most that much.
    """

    def __init__(
        self,
        pipelines: Mapping[str, object] | Iterable[object],
        *,
        store: Store | None = None,
        clock: Callable[[], datetime] = utc_now,
        poll_interval: float = 30.0,
        lease: timedelta = timedelta(minutes=5),
        max_parallel: int = 4,
        project_dir: str | os.PathLike[str] | None = None,
        settle: timedelta = timedelta(seconds=2),
    ) -> None:
        items = pipelines.values() if isinstance(pipelines, Mapping) else pipelines
        self.scheduled = [_scheduled(p) for p in items]
        names = [s.name for s in self.scheduled]
        if len(set(names)) != len(names):
            raise InvalidValueError(f"two pipelines share a name: {sorted(names)}; rename one")
        if not isinstance(poll_interval, int | float) or not 0.01 <= poll_interval <= 86_400:
            raise InvalidValueError(
                f"poll_interval must be seconds between 0.01 and 86400, not {poll_interval!r}"
            )
        if not isinstance(lease, timedelta) or lease < timedelta(seconds=max(1, 3 * poll_interval)):
            raise InvalidValueError(
                f"lease must be a timedelta of at least 3 poll intervals "
                f"({3 * poll_interval:g} s) so that ticks renew it in time, not {lease!r}"
            )
        if isinstance(max_parallel, bool) or not isinstance(max_parallel, int) or max_parallel < 1:
            raise InvalidValueError(
                f"max_parallel must be an int of 1 or more, not {max_parallel!r}"
            )
        if not isinstance(settle, timedelta) or settle < timedelta(0):
            raise InvalidValueError(f"settle must be a timedelta of 0 or more, not {settle!r}")
        self._backends_store = store
        self.clock = clock
        self.poll_interval = float(poll_interval)
        self.lease_ms = int(lease.total_seconds() * 1000)
        self.max_parallel = max_parallel
        self.project_dir = Path(project_dir) if project_dir is not None else Path.cwd()
        self.settle = settle
        self.claimer = f"{socket.gethostname()[:180]}:{os.getpid()}:{secrets.token_hex(4)}"
        self._lock = threading.Condition()
        self._jobs: dict[tuple[str, int], _Job] = {}
        self._queue: deque[tuple[str, int]] = deque()
        self._busy: set[str] = set()  # pipelines with a run in progress
        self._workers: list[threading.Thread] = []
        self._stopping = threading.Event()

    @property
    def store(self) -> Store:
        if self._backends_store is None:
            self._backends_store = backends().store
        return self._backends_store

    # -- one pass -----------------------------------------------------------------------------

    def _now(self, now: datetime | None) -> datetime:
        moment = self.clock() if now is None else now
        if not isinstance(moment, datetime) or moment.tzinfo is None:
            raise InvalidValueError(
                f"the scheduler's clock must give aware datetimes, not {moment!r}"
            )
        return moment.astimezone(UTC)

    def tick(self, now: datetime | None = None) -> TickReport:
        """One pass over every pipeline; claimed slots start on worker threads."""
        now = self._now(now)
        report = TickReport(now)
        if self._stopping.is_set():
            return report
        now_ms = to_slot_ms(now)
        self._renew(now_ms, report)
        self._recover(now_ms, report)
        for item in self.scheduled:
            for what, step in (("schedule", self._cron), ("triggers", self._triggers)):
                try:
                    step(item, now, report)
                except (MloopError, OSError) as error:
                    message = f"pipeline {item.name!r}: {what}: {error}"
                    log.warning("%s", message)
                    report.errors.append(message)
        return report

    def _renew(self, now_ms: int, report: TickReport) -> None:
        with self._lock:
            jobs = list(self._jobs.items())
        for (key, slot_ms), job in jobs:
            if job.lease_until_ms - now_ms > self.lease_ms // 2:
                continue
            until = now_ms + self.lease_ms
            if self.store.schedules.renew_lease(key, slot_ms, claimer=self.claimer, until_ms=until):
                job.lease_until_ms = until
            else:
                with self._lock:
                    if not job.started:  # not ours any more: leave it to its new claimer
                        self._jobs.pop((key, slot_ms), None)
                        with contextlib.suppress(ValueError):
                            self._queue.remove((key, slot_ms))
                message = (
                    f"pipeline {job.fired.pipeline!r}: lost slot {job.fired.slot.isoformat()} "
                    "to another scheduler (its lease ran out before this one renewed it)"
                )
                log.warning("%s", message)
                report.errors.append(message)

    def _recover(self, now_ms: int, report: TickReport) -> None:
        keys: dict[str, Scheduled] = {}
        for item in self.scheduled:
            if item.schedule is not None:
                keys[_fit(item.name)] = item
            keys.update((key, item) for key, _ in item.triggers)
        for record in self.store.schedules.expired_slots(list(keys), now_ms=now_ms):
            slot_ms = to_slot_ms(record.slot)
            with self._lock:
                if (record.schedule, slot_ms) in self._jobs:
                    continue
            if self.store.schedules.claim_slot(
                record.schedule,
                slot_ms,
                claimer=self.claimer,
                now_ms=now_ms,
                lease_ms=self.lease_ms,
            ):
                item = keys[record.schedule]
                tags = {"mloop.slot": record.slot.isoformat(), "mloop.retry": "true"}
                if item.schedule is not None and record.schedule == _fit(item.name):
                    tags["mloop.schedule"] = item.schedule.cron
                self._enqueue(item, record.schedule, record.slot, "retry", tags, now_ms, report)

    def _cron(self, item: Scheduled, now: datetime, report: TickReport) -> None:
        schedule = item.schedule
        if schedule is None:
            return
        schedules = self.store.schedules
        now_ms = to_slot_ms(now)
        cursor = schedules.get_cursor(item.cron_cursor)
        if cursor is None:  # first sight: slots from now on
            schedules.move_cursor(
                item.cron_cursor, expected=None, position=_position(now_ms), now_ms=now_ms
            )
            report.first_look.append(f"{item.name}: {schedule.cron}")
            return
        after = from_ms(int(cursor))
        assert after is not None
        if now <= after:
            return
        plan = schedule.plan(after, now)
        key = _fit(item.name)
        if plan.skip:
            schedules.skip_slots(
                key, [to_slot_ms(s) for s in plan.skip], claimer=self.claimer, now_ms=now_ms
            )
            report.skipped.extend((item.name, s) for s in plan.skip)
        for slot in plan.run:
            if schedules.claim_slot(
                key, to_slot_ms(slot), claimer=self.claimer, now_ms=now_ms, lease_ms=self.lease_ms
            ):
                late = now - slot > schedule.grace
                tags = {"mloop.schedule": schedule.cron, "mloop.slot": slot.isoformat()}
                self._enqueue(item, key, slot, "catch-up" if late else "cron", tags, now_ms, report)
        # Only after the claims: a scheduler that dies in between finds them taken, not lost.
        schedules.move_cursor(
            item.cron_cursor, expected=cursor, position=_position(now_ms), now_ms=now_ms
        )

    def _triggers(self, item: Scheduled, now: datetime, report: TickReport) -> None:
        if not item.triggers:
            return
        schedules = self.store.schedules
        now_ms = to_slot_ms(now)
        context = TriggerContext(self.store, self.project_dir, utc_now() - self.settle)
        for key, trigger in item.triggers:
            try:
                cursor = schedules.get_cursor(key)
                check = trigger.check(context, cursor)
                if cursor is None or not check.fire:
                    if check.position != cursor:
                        schedules.move_cursor(
                            key, expected=cursor, position=check.position, now_ms=now_ms
                        )
                    if cursor is None:
                        report.first_look.append(f"{item.name}: {trigger.describe()}")
                    continue
                slot_ms = schedules.fire_trigger(
                    key,
                    expected=cursor,
                    position=check.position,
                    schedule=key,
                    claimer=self.claimer,
                    now_ms=now_ms,
                    lease_ms=self.lease_ms,
                )
                if slot_ms is not None:
                    slot = from_ms(slot_ms)
                    assert slot is not None
                    tags = {"mloop.trigger": trigger.describe()[:250], **check.tags}
                    self._enqueue(item, key, slot, trigger.describe(), tags, now_ms, report)
            except (MloopError, OSError) as error:
                message = f"pipeline {item.name!r}: trigger {trigger.describe()}: {error}"
                log.warning("%s", message)
                report.errors.append(message)

    # -- running ------------------------------------------------------------------------------

    def _enqueue(
        self,
        item: Scheduled,
        key: str,
        slot: datetime,
        reason: str,
        tags: dict[str, str],
        now_ms: int,
        report: TickReport,
    ) -> None:
        fired = Fired(item.name, key, slot, reason)
        report.fired.append(fired)
        log.info("pipeline %r: slot %s claimed (%s)", item.name, slot.isoformat(), reason)
        job = _Job(fired, item.pipeline, tags, now_ms + self.lease_ms)
        with self._lock:
            self._jobs[(key, to_slot_ms(slot))] = job
            self._queue.append((key, to_slot_ms(slot)))
            while len(self._workers) < min(self.max_parallel, len(self._queue) + len(self._busy)):
                worker = threading.Thread(
                    target=self._work, name=f"mloop-scheduler-{len(self._workers)}", daemon=True
                )
                self._workers.append(worker)
                worker.start()
            self._lock.notify_all()

    def _next_job(self) -> tuple[tuple[str, int], _Job] | None:
        with self._lock:
            while True:
                if self._stopping.is_set():
                    return None
                for slot in self._queue:
                    job = self._jobs[slot]
                    if job.fired.pipeline not in self._busy:
                        self._queue.remove(slot)
                        self._busy.add(job.fired.pipeline)
                        job.started = True
                        return slot, job
                self._lock.wait(timeout=1.0)

    def _work(self) -> None:
        while (taken := self._next_job()) is not None:
            (key, slot_ms), job = taken
            try:
                self._run(key, slot_ms, job)
            except Exception:  # a worker outlives anything one slot does; the lease frees it
                log.exception("pipeline %r: the scheduler failed running a slot", key)
            finally:
                with self._lock:
                    self._busy.discard(job.fired.pipeline)
                    self._jobs.pop((key, slot_ms), None)
                    self._lock.notify_all()

    def _run(self, key: str, slot_ms: int, job: _Job) -> None:
        run_id: str | None = None
        error: str | None = None
        try:
            result = job.pipeline.run(tags=job.tags, raise_on_error=False, store=self.store)
            run_id = getattr(result, "run_id", None)
            ok = getattr(result, "status", None) == "finished"
            if not ok:
                error = str(getattr(result, "error", None) or f"run ended {result.status!r}")
        except Exception as exc:  # noqa: BLE001 - a pipeline's failure is recorded, never the scheduler's end
            ok = False
            run_id = getattr(exc, "run_id", None)  # PipelineError names the failed run
            error = "".join(traceback.format_exception(exc))
        status: Literal["finished", "failed"] = "finished" if ok else "failed"
        log.info("pipeline %r: slot %s %s", job.fired.pipeline, job.fired.slot.isoformat(), status)
        try:
            kept = self.store.schedules.finish_slot(
                key,
                slot_ms,
                claimer=self.claimer,
                status=status,
                now_ms=to_slot_ms(self._now(None)),
                run_id=run_id if isinstance(run_id, str) else None,
                error=error,
            )
        except MloopError as exc:
            log.error("pipeline %r: could not record the end of its run: %s", key, exc)
            return
        if not kept:
            log.warning(
                "pipeline %r: slot %s was taken over by another scheduler before this run "
                "ended; its result (run %s) is not recorded in the slot",
                job.fired.pipeline,
                job.fired.slot.isoformat(),
                run_id,
            )

    # -- lifetime -----------------------------------------------------------------------------

    def running(self) -> int:
        """How many claimed slots this scheduler has queued or running."""
        with self._lock:
            return len(self._jobs)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every queued and running slot is done; False if ``timeout`` ran out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._jobs:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._lock.wait(timeout=left)
        return True

    def stop(self) -> None:
        """Stop claiming; queued slots are released at once, running ones finish."""
        self._stopping.set()
        now_ms = to_slot_ms(self._now(None))
        with self._lock:
            queued = [(slot, self._jobs.pop(slot)) for slot in self._queue]
            self._queue.clear()
            self._lock.notify_all()
        for (key, slot_ms), _job in queued:
            # A lease in the past: the next scheduler's tick takes the slot over.
            with contextlib.suppress(MloopError):
                self.store.schedules.renew_lease(
                    key, slot_ms, claimer=self.claimer, until_ms=max(0, now_ms - 1)
                )

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def upcoming(self, now: datetime | None = None) -> list[tuple[Scheduled, datetime | None]]:
        """Each pipeline with the next slot of its schedule (None when it has only triggers)."""
        now = self._now(now)
        return [
            (item, item.schedule.next_after(now) if item.schedule is not None else None)
            for item in self.scheduled
        ]

    def recent(self, limit: int = 20) -> list[SlotRecord]:
        """The newest slots of these pipelines, newest first."""
        keys = set()
        for item in self.scheduled:
            keys.add(_fit(item.name))
            keys.update(key for key, _ in item.triggers)
        return [s for s in self.store.schedules.list_slots(limit=limit * 10) if s.schedule in keys][
            :limit
        ]

    def serve_forever(self, *, drain_timeout: float | None = None) -> None:
        """Tick every ``poll_interval`` seconds until :meth:`stop`, SIGTERM or Ctrl-C.

        On the first signal it stops claiming and waits for running slots (up to
        ``drain_timeout`` seconds); on a second it returns at once, and the slots still running
        are taken over by another scheduler once their lease runs out.
        """
        with self._signals():
            while not self._stopping.is_set():
                started = time.monotonic()
                try:
                    self.tick()
                except MloopError as error:  # the store is down: try again next round
                    log.error("tick failed: %s", error)
                self._stopping.wait(max(0.0, self.poll_interval - (time.monotonic() - started)))
            self.wait(drain_timeout)

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        signals = 0

        def handle(signum: int, _frame: FrameType | None) -> None:
            nonlocal signals
            signals += 1
            if signals > 1:
                raise KeyboardInterrupt
            log.warning(
                "stopping: no new slots are claimed; waiting for %d running (signal again to "
                "leave them to another scheduler after their lease)",
                self.running(),
            )
            self.stop()

        previous = {s: signal.signal(s, handle) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        except KeyboardInterrupt:
            pass
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

"""Small pipeline-like objects and a clock the test moves, for the scheduler tests."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from mloop.store import SqlStore, new_id

START = datetime(2026, 6, 1, 0, 0, 30, tzinfo=UTC)


class FakeClock:
    """Aware UTC time, moved only by the test."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass(frozen=True)
class Result:
    run_id: str
    status: str
    error: str | None = None


@dataclass
class Job:
    """A pipeline as the scheduler sees one: name, schedule, triggers and ``run``.

    Every call is recorded with its tags; ``gate`` holds the run until the test opens it;
    ``fail`` makes it raise, ``status`` makes it report a failed run.
    """

    name: str
    schedule: object = None
    catchup: str = "latest"
    triggers: tuple[object, ...] = ()
    fail: bool = False
    status: str = "finished"
    gate: threading.Event | None = None
    calls: list[dict[str, str]] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)

    def run(
        self,
        *,
        tags: Mapping[str, str] | None = None,
        raise_on_error: bool = True,
        store: SqlStore | None = None,
    ) -> Result:
        assert not raise_on_error, "the scheduler records failures; it must not ask for raises"
        assert isinstance(store, SqlStore), "the scheduler passes its store to the run"
        self.calls.append(dict(tags or {}))
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(30), "the test never opened the gate"
        if self.fail:
            raise RuntimeError(f"{self.name} broke")
        run_id = new_id()
        self.run_ids.append(run_id)
        return Result(run_id, self.status, None if self.status == "finished" else "step x failed")

"""A scheduler killed mid-run (SIGKILL): its slot is run again by another, after the lease."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import pytest

from mloop.pipelines import Scheduler, on_new_data
from mloop.store import SqlStore

from ._fakes import Job

CHILD = textwrap.dedent(
    """
    import sys
    import time
    from datetime import timedelta
    from pathlib import Path

    from mloop.pipelines import Scheduler, on_new_data, pipeline, step
    from mloop.store import SqlStore

    folder = Path(sys.argv[2])


    @step
    def slowly(n: int) -> int:
        (folder / "started").touch()
        time.sleep(120)  # killed long before this ends
        return n


    @pipeline(triggers=[on_new_data(str(folder / "data"))])
    def ingest(n: int = 1):
        return slowly(n)


    if __name__ == "__main__":
        Scheduler(
            [ingest],
            store=SqlStore(sys.argv[1]),
            poll_interval=0.2,
            lease=timedelta(seconds=2),
            settle=timedelta(0),
        ).serve_forever()
    """
)


def wait_for(condition: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.slow
def test_a_killed_schedulers_slot_is_taken_over_after_its_lease(
    sqlite_url: str, tmp_path: Path
) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    data = tmp_path / "data"
    store = SqlStore(sqlite_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOOP_")}
    env.update(MLOOP_HOME=str(tmp_path), MLOOP_COMPUTE='{"backend": "inprocess"}')
    log = tmp_path / "child.log"
    with log.open("wb") as output:
        child = subprocess.Popen(
            [sys.executable, str(script), sqlite_url, str(tmp_path)],
            env=env,
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    key = f"ingest:on_new_data:{data}"
    try:
        wait_for(
            lambda: store.schedules.get_cursor(key) is not None or child.poll() is not None,
            "the child's first pass",
        )
        assert child.poll() is None, log.read_text()
        data.mkdir()
        (data / "day1.csv").write_text("a\n1\n")
        wait_for((tmp_path / "started").exists, "the child to start the pipeline")
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    (left,) = store.schedules.list_slots(schedule=key)
    assert left.status == "claimed"  # the dead scheduler's claim, with its lease running

    job = Job("ingest", triggers=(on_new_data(str(data)),))
    heir = Scheduler(
        [job], store=store, poll_interval=0.2, lease=timedelta(seconds=2), settle=timedelta(0)
    )
    fired = heir.tick().fired
    taken_at = time.monotonic()
    while not fired:
        assert time.monotonic() - taken_at < 30, "the slot was never taken over"
        time.sleep(0.2)
        fired = heir.tick().fired
    assert [(f.slot, f.reason) for f in fired] == [(left.slot, "retry")]
    assert heir.wait(10)
    (done,) = store.schedules.list_slots(schedule=key)
    assert (done.status, done.run_id) == ("finished", job.run_ids[0])
    assert done.claimed_by == heir.claimer
    assert job.calls[0]["mloop.retry"] == "true"
    store.close()

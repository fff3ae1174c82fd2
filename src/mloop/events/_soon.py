"""Delivering right after a change, in the background, so the caller never waits.

``deliver_soon(store)`` is called after a commit that made events (the registry does, and so
does ``emit``). It wakes one daemon thread per store, which waits ``DEBOUNCE`` for a burst of
changes to settle, sends what is due, stays for ``LINGER`` seconds in case more comes (or a
retry falls due), then exits. Nothing is started when the store has no active webhook; that
answer is cached for ``PRESENCE_TTL`` seconds, so a burst of events costs one query, and a
webhook added by another process is seen within that time.

Nothing is lost if the thread never gets to run: deliveries stay pending in the store until
``mloop events deliver`` or any later process's ``deliver_soon`` sends them. At interpreter
exit the thread gets up to ``EXIT_GRACE`` seconds to finish what is due, and no more.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from datetime import UTC, datetime

from mloop.backends import backends
from mloop.events._deliver import RetryPolicy, deliver
from mloop.store import Store

__all__ = ["deliver_soon", "webhooks_changed"]

log = logging.getLogger("mloop.events")

PRESENCE_TTL = 2.0  # seconds an answer to "does this store have active webhooks?" is trusted
DEBOUNCE = 0.05  # seconds to let a burst of changes commit before sending
LINGER = 3.0  # seconds an idle worker waits for more work before it exits
EXIT_GRACE = 1.0  # seconds interpreter exit waits for deliveries under way
PASS_LIMIT = 1000  # deliveries per pass
POLICY = RetryPolicy()  # timeouts and retry spacing of background deliveries

_lock = threading.Lock()
_workers: dict[int, _Worker] = {}
_presence: dict[str, tuple[float, bool]] = {}  # store uri -> (monotonic time, has webhooks)
_exiting = False


class _Worker:
    """The background deliverer of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.wake = threading.Event()  # more work may be due
        self.hurry = threading.Event()  # the interpreter is exiting: one last pass, then go
        self.stop = threading.Event()  # claim nothing more
        self.thread = threading.Thread(target=self._run, name="mloop-events-deliver", daemon=True)

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                self.hurry.wait(DEBOUNCE)
                self.wake.clear()
                report = deliver(self.store, POLICY, limit=PASS_LIMIT, stop=self.stop)
                if self.hurry.is_set():
                    return
                wait, retry_due = LINGER, False
                if report.next_retry is not None:
                    until = (report.next_retry - datetime.now(UTC)).total_seconds()
                    if until <= LINGER:
                        wait, retry_due = max(until, 0.0), True
                if self.wake.wait(wait) or retry_due:
                    continue
                with _lock:  # decide under the lock deliver_soon kicks under: no kick is lost
                    if not self.wake.is_set():
                        self._unregister()
                        return
        except Exception as error:  # noqa: BLE001 - a background thread must not die loudly
            log.warning(
                "mloop: background webhook delivery stopped: %s. Pending deliveries stay in "
                "the store; `mloop events deliver` sends them.",
                error,
            )
        finally:
            with _lock:
                self._unregister()

    def _unregister(self) -> None:
        # Called with _lock held.
        if _workers.get(id(self.store)) is self:
            del _workers[id(self.store)]


def _has_webhooks(store: Store) -> bool:
    now = time.monotonic()
    with _lock:
        cached = _presence.get(store.uri)
    if cached is not None and now - cached[0] < PRESENCE_TTL:
        return cached[1]
    found = any(hook.active for hook in store.events.list_webhooks())
    with _lock:
        _presence[store.uri] = (now, found)
    return found


def webhooks_changed(store: Store) -> None:
    """Forget the cached answer for ``store``: a webhook was just added or removed here."""
    with _lock:
        _presence.pop(store.uri, None)


def deliver_soon(store: Store | None = None) -> None:
    """Send ``store``'s due deliveries from a background thread, soon; return at once.

    Call it after committing a change that emitted events. It never raises (a problem is
    logged on the ``mloop.events`` logger) and starts nothing when no webhook is active.
    """
    try:
        if store is None:
            store = backends().store
        if not _has_webhooks(store):
            return
        with _lock:
            if _exiting:
                return
            worker = _workers.get(id(store))
            if worker is not None and worker.store is store:
                worker.wake.set()
                return
            worker = _workers[id(store)] = _Worker(store)
            try:
                worker.thread.start()
            except BaseException:
                del _workers[id(store)]
                raise
    except Exception as error:  # noqa: BLE001 - the caller's change is committed; never fail it
        log.warning(
            "mloop: could not start webhook delivery: %s. The deliveries stay pending; "
            "`mloop events deliver` sends them.",
            error,
        )


def wait_idle(timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for every background worker to finish; True if they did.

    For tests and embedding applications that must not leave a worker behind.
    """
    deadline = time.monotonic() + timeout
    while True:
        with _lock:
            threads = [worker.thread for worker in _workers.values()]
        if not threads:
            return True
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if time.monotonic() >= deadline:
            with _lock:
                return not _workers


def _at_exit() -> None:
    global _exiting
    with _lock:
        _exiting = True
        workers = list(_workers.values())
    for worker in workers:
        worker.hurry.set()
        worker.wake.set()
    deadline = time.monotonic() + EXIT_GRACE
    for worker in workers:
        worker.thread.join(max(0.0, deadline - time.monotonic()))
        worker.stop.set()


def _after_fork_in_child() -> None:
    # Threads do not survive a fork; their entries (and the lock's state) must not either.
    global _lock
    _lock = threading.Lock()
    _workers.clear()
    _presence.clear()


atexit.register(_at_exit)
os.register_at_fork(after_in_child=_after_fork_in_child)

"""What the events tests share: a clock the test moves, and a real HTTP receiver.

The receiver is ``http.server`` on a loopback port, run in a thread. It records every request
and answers as ``for_event`` says for that event id, else from a script of ``Reply`` values
(then ``default``): a status, headers, a delay before answering (to outlast the client's
timeout), a reason phrase.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

START_MS = 1_800_000_000_000


class Clock:
    """Milliseconds since the epoch, moved only by the test."""

    def __init__(self, now_ms: int = START_MS) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, seconds: float) -> None:
        self.now_ms += int(seconds * 1000)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering
    reason: str | None = None


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes


class Receiver:
    """A real webhook endpoint on 127.0.0.1 that records requests and answers as told."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.default = Reply()
        self.for_event: dict[str, Reply] = {}  # X-Mloop-Delivery -> how to answer it
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self.closing = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def reply(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, in order; then with ``default``."""
        with self._lock:
            self._script.extend(replies)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.01)
        raise AssertionError(f"received {len(self.received)} requests, expected {count}")

    def _next(self, request: Received) -> Reply:
        with self._lock:
            self.received.append(request)
            event_reply = self.for_event.get(request.headers.get("x-mloop-delivery", ""))
            if event_reply is not None:
                return event_reply
            return self._script.popleft() if self._script else self.default

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                reply = receiver._next(Received(self.path, headers, body))
                if reply.delay and receiver.closing.wait(reply.delay):
                    return
                try:
                    self.send_response(reply.status, reply.reason)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the client gave up waiting (a timeout test)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()

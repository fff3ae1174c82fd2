"""The demo's serving step: start the model server, send it traffic, watch the log grow."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mloop.backends import Backends
from mloop.errors import MissingExtraError, MloopError
from mloop.registry import parse_ref
from mloop.serving import create_model_app, read_predictions

__all__ = ["ServedTraffic", "serve_and_send_traffic"]


@dataclass(frozen=True)
class ServedTraffic:
    """What the demo's requests got back, and what the prediction log holds."""

    url: str
    json_requests: int
    entity_requests: int
    failures: list[str]
    versions: dict[int, int]  # model version -> responses it gave
    log_rows_before: int
    log_rows_after: int
    seconds: float
    samples: list[dict[str, Any]] = field(default_factory=list)  # a few responses, as sent


def _logged(name: str, ctx: Backends) -> int:
    try:
        return len(read_predictions(name, settings=ctx.settings))
    except MloopError:
        return 0


def _post(url: str, body: Any) -> tuple[int, Any]:
    """POST JSON with the standard library (the demo needs no HTTP client package)."""
    data, headers = json.dumps(body).encode(), {"content-type": "application/json"}
    request = urllib.request.Request(url, data, headers)  # noqa: S310 - http on loopback
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def serve_and_send_traffic(
    ctx: Backends,
    model_ref: str,
    patients: Sequence[int],
    records: Sequence[Mapping[str, Any]] = (),
    *,
    key: str = "patient_id",
    host: str = "127.0.0.1",
) -> ServedTraffic:
    """Serve ``model_ref`` on a free loopback port (uvicorn in a thread), send one JSON
    request per record and one entity-key request (``{key: id}``) per patient, stop the
    server, and count the prediction log's rows before and after."""
    try:
        import uvicorn
    except ImportError as error:
        raise MissingExtraError("uvicorn", "server", "serving in the demo") from error
    name = parse_ref(model_ref).name or model_ref
    started = time.perf_counter()
    before = _logged(name, ctx)
    app = create_model_app(
        model_ref,
        poll_interval=None,
        store=ctx.store,
        artifacts=ctx.artifacts,
        settings=ctx.settings,
    )
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, name="mloop-demo-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise MloopError("the demo's model server did not start; see the log above")
        time.sleep(0.01)
    url = f"http://{host}:{server.servers[0].sockets[0].getsockname()[1]}"
    failures: list[str] = []
    versions: dict[int, int] = {}
    samples: list[dict[str, Any]] = []
    bodies = [{"records": [dict(r)]} for r in records] + [{key: p} for p in patients]
    try:
        for body in bodies:
            status, answer = _post(f"{url}/predict", body)
            if status != 200:
                failures.append(f"{status}: {str(answer)[:200]}")
                continue
            version = answer["model"]["version"]
            versions[version] = versions.get(version, 0) + 1
            if len(samples) < 3 or (key in body and len(samples) < 6):
                samples.append({"request": body, "response": answer})
    finally:
        server.should_exit = True
        thread.join(30)  # the app's shutdown flushes and closes the prediction log
    return ServedTraffic(
        url=url,
        json_requests=len(records),
        entity_requests=len(patients),
        failures=failures,
        versions=versions,
        log_rows_before=before,
        log_rows_after=_logged(name, ctx),
        seconds=time.perf_counter() - started,
        samples=samples,
    )

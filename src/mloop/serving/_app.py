"""``create_model_app``: the online model server, an ASGI app over a registry reference.

    app = create_model_app("churn@production", canary="churn@challenger:10%")
    uvicorn.run(app, port=8080)        # or: mloop serve churn@production

Endpoints: ``POST /predict`` (JSON records or columns, or entity keys whose features are looked
up), the Open Inference Protocol v2 (``/v2/...``), ``/metrics``, ``/health/live``,
``/health/ready`` and OpenAPI at ``/docs``. See docs/serving.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop import __version__
from mloop.artifacts import ArtifactStore
from mloop.config import Settings
from mloop.errors import InvalidValueError, MissingExtraError
from mloop.serving._batcher import Batcher, Scored
from mloop.serving._lookup import look_up
from mloop.serving._metrics import CONTENT_TYPE_LATEST, ServerMetrics
from mloop.serving._oip import decode_infer, encode_infer, model_metadata
from mloop.serving._payload import Columns, PayloadError, parse_predict_body
from mloop.serving._prediction_log import PredictionLog
from mloop.serving._recorder import PredictionSink, Recorder
from mloop.serving._schema import predict_body_schema
from mloop.serving._served import ModelSlot, ServedModel
from mloop.serving._traffic import parse_canary, parse_shadow
from mloop.store import Store

if TYPE_CHECKING:  # imported on the first entity-key request (pandera, scipy: slow to import)
    from mloop.features import FeatureStore

try:
    from fastapi import FastAPI, Request, Response
except ImportError:  # pragma: no cover - create_model_app names the extra to install
    FastAPI = None  # type: ignore[assignment,misc]


__all__ = ["MAX_BODY_BYTES", "MAX_ROWS", "create_model_app"]

log = logging.getLogger("mloop.serving")

MAX_ROWS = 10_000
MAX_BODY_BYTES = 16 * 1024 * 1024


class ModelServer:
    """What one app serves: the slots (primary, canary, shadow), their batchers and the log."""

    def __init__(
        self,
        model_ref: str,
        *,
        canary: str | None,
        shadow: str | None,
        max_batch: int,
        max_wait_ms: float,
        poll_interval: float | None,
        recorder: Recorder | None,
        feature_store: FeatureStore | None,
        store: Store | None,
        artifacts: ArtifactStore | None,
        settings: Settings | None,
    ) -> None:
        self.metrics = ServerMetrics()
        self.recorder = recorder
        self.poll_interval = poll_interval
        self._store, self._artifacts, self._settings = store, artifacts, settings
        self._feature_store = feature_store
        self._owns_features = feature_store is None
        self._lookups = ThreadPoolExecutor(4, thread_name_prefix="mloop-lookup")
        kwargs: dict[str, Any] = {"store": store, "artifacts": artifacts, "settings": settings}
        self.primary = ModelSlot(model_ref, "primary", **kwargs)
        self.canary: ModelSlot | None = None
        self.canary_share = 0.0
        if canary is not None:
            canary_ref, self.canary_share = parse_canary(canary)
            self.canary = ModelSlot(canary_ref, "canary", **kwargs)
        self.shadow = ModelSlot(parse_shadow(shadow), "shadow", **kwargs) if shadow else None
        self.batchers: dict[str, Batcher] = {}
        for slot in self.slots:
            self.batchers[slot.role] = Batcher(
                slot,
                max_batch=max_batch,
                max_wait_ms=max_wait_ms,
                observe=self.metrics.observe_batch,
                after=recorder,
            )
            self.metrics.set_model(slot.role, slot.current.name, slot.current.label)
        self.ready = True
        self._pollers: list[asyncio.Task[None]] = []

    @property
    def slots(self) -> list[ModelSlot]:
        return [s for s in (self.primary, self.canary, self.shadow) if s is not None]

    def features(self) -> FeatureStore:
        if self._feature_store is None:
            from mloop.features import FeatureStore

            self._feature_store = FeatureStore(
                store=self._store, artifacts=self._artifacts, settings=self._settings
            )
        return self._feature_store

    # -- scoring ------------------------------------------------------------------------------

    async def score(self, columns: Columns, rows: int) -> tuple[Scored, str]:
        """Route a request (primary or canary), complete entity keys, score; mirror to shadow."""
        role = "primary"
        share = self.canary_share
        if self.canary is not None and random.random() < share:  # noqa: S311 - not for secrets
            role = "canary"
        batcher = self.batchers[role]
        served = batcher.slot.current
        full = columns
        if served.needs is not None and served.needs.wants_lookup(columns):
            loop = asyncio.get_running_loop()
            full = await loop.run_in_executor(
                self._lookups, look_up, self.features(), served.needs, columns
            )
        checked = served.check_columns(full)
        scored = await batcher.submit(checked, rows, inputs=full, checked_by=served)
        if self.shadow is not None:
            self._mirror(full, rows, role)
        return scored, role

    def _mirror(self, full: Columns, rows: int, origin: str) -> None:
        assert self.shadow is not None
        batcher = self.batchers["shadow"]
        shadow = self.shadow.current
        try:
            checked = shadow.check_columns(full)
        except PayloadError:
            self.metrics.shadow_dropped.inc()  # the shadow takes other columns: nothing to log
            return
        if not batcher.submit_nowait(checked, rows, inputs=full, origin=origin, checked_by=shadow):
            self.metrics.shadow_dropped.inc()

    # -- hot swap -----------------------------------------------------------------------------

    async def _poll(self, slot: ModelSlot) -> None:
        assert self.poll_interval is not None
        while True:
            await asyncio.sleep(self.poll_interval)
            await self.refresh(slot)

    async def refresh(self, slot: ModelSlot) -> bool:
        """Check ``slot``'s alias now; load, warm and swap in a new version if it moved."""
        try:
            swapped = await asyncio.to_thread(slot.refresh)
        except Exception as error:  # noqa: BLE001 - any failure: the old version keeps serving
            self.metrics.refresh_failures.labels(slot.role).inc()
            log.warning("could not refresh %s (%s): %s", slot.role, slot.ref, error)
            return False
        if swapped:
            self.metrics.swaps.labels(slot.role).inc()
            self.metrics.set_model(slot.role, slot.current.name, slot.current.label)
        return swapped

    def start(self) -> None:
        if self.poll_interval and not self._pollers:
            for slot in self.slots:
                if slot.follows_alias:
                    self._pollers.append(asyncio.get_running_loop().create_task(self._poll(slot)))

    async def stop(self) -> None:
        self.ready = False
        for task in self._pollers:
            task.cancel()
        for task in self._pollers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._pollers.clear()
        for batcher in self.batchers.values():
            await batcher.close()
        if self.recorder is not None:
            await asyncio.to_thread(self.recorder.close)
        self._lookups.shutdown(wait=False)
        if self._owns_features and self._feature_store is not None:
            self._feature_store.close()


def _open_log(
    prediction_log: Any, settings: Settings | None, *, write_ahead: bool = True
) -> Recorder | None:
    """The recorder for ``prediction_log``: a sink object, a folder, None (the setting's
    folder) or False (no log)."""
    if prediction_log is False:
        return None
    if hasattr(prediction_log, "append") and hasattr(prediction_log, "close"):
        sink: PredictionSink = prediction_log
        return Recorder(lambda name: sink, write_ahead=write_ahead)
    if prediction_log is not None and not isinstance(prediction_log, str | Path):
        raise InvalidValueError(
            "prediction_log must be a folder, an object with append() and close(), None (the "
            f"prediction_log setting) or False, not {type(prediction_log).__name__}"
        )
    if prediction_log is None:
        from mloop.backends import current_settings

        folder = (settings or current_settings()).resolved_prediction_log()
    else:
        folder = Path(prediction_log)
    return Recorder(lambda name: PredictionLog(folder, model=name), write_ahead=write_ahead)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()


async def _read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise PayloadError(413, f"the request body is {length} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadError(413, f"the request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def create_model_app(
    model_ref: str | Path,
    *,
    canary: str | None = None,
    shadow: str | None = None,
    max_batch: int = 64,
    max_wait_ms: float = 2.0,
    max_rows: int = MAX_ROWS,
    max_body_bytes: int = MAX_BODY_BYTES,
    poll_interval: float | None = 5.0,
    prediction_log: Any = None,
    log_write_ahead: bool = True,
    feature_store: FeatureStore | None = None,
    store: Store | None = None,
    artifacts: ArtifactStore | None = None,
    settings: Settings | None = None,
) -> FastAPI:
    """An ASGI app serving ``model_ref`` (``churn@production``, ``churn/3``, a package folder).

    The model is loaded and warmed before this returns. Every ``poll_interval`` seconds (None:
    never) the server checks whether the alias moved, and swaps in the new version once it is
    loaded and warmed. ``canary="churn@challenger:10%"`` sends that share of requests to another
    reference; ``shadow="churn@challenger"`` mirrors requests to one whose predictions are only
    logged. Concurrent requests are scored in batches of up to ``max_batch`` rows, waiting at
    most ``max_wait_ms`` for more under concurrent load. ``prediction_log``: a folder, a sink
    object, None (the ``prediction_log`` setting) or False (log nothing). With
    ``log_write_ahead`` (the default) a batch's records are appended to the log's spool before
    its responses go out, so a killed server loses no prediction it answered; False appends from
    a background thread instead (nothing waits, but a crash can lose the last answers).
    """
    if not isinstance(log_write_ahead, bool):
        raise InvalidValueError(f"log_write_ahead must be True or False, not {log_write_ahead!r}")
    if FastAPI is None:  # pragma: no cover
        raise MissingExtraError("fastapi", "server", "the model server")
    for name, value, low in (("max_batch", max_batch, 1), ("max_rows", max_rows, 1)):
        if type(value) is not int or value < low:
            raise InvalidValueError(f"{name} must be an integer >= {low}, not {value!r}")
    if isinstance(max_wait_ms, bool) or not isinstance(max_wait_ms, int | float) or max_wait_ms < 0:
        raise InvalidValueError(f"max_wait_ms must be a number >= 0, not {max_wait_ms!r}")
    if poll_interval is not None and (
        isinstance(poll_interval, bool)
        or not isinstance(poll_interval, int | float)
        or poll_interval <= 0
    ):
        raise InvalidValueError(f"poll_interval must be seconds > 0 or None, not {poll_interval!r}")
    recorder = _open_log(prediction_log, settings, write_ahead=log_write_ahead)
    try:
        server = ModelServer(
            str(model_ref) if isinstance(model_ref, Path) else model_ref,
            canary=canary,
            shadow=shadow,
            max_batch=max_batch,
            max_wait_ms=float(max_wait_ms),
            poll_interval=poll_interval,
            recorder=recorder,
            feature_store=feature_store,
            store=store,
            artifacts=artifacts,
            settings=settings,
        )
    except BaseException:
        if recorder is not None:
            recorder.close()
        raise
    primary = server.primary.current

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        server.start()
        try:
            yield
        finally:
            await server.stop()

    app = FastAPI(
        title=f"mloop model server: {primary.name}",
        version=__version__,
        description=(
            f"Serves {server.primary.ref} (now version {primary.label or '-'}). "
            "POST /predict takes JSON records or columns, or entity keys; the Open Inference "
            "Protocol v2 is under /v2. See docs/serving.md."
        ),
        lifespan=lifespan,
    )
    app.state.server = server
    metrics = server.metrics

    def problem(status: int, detail: str) -> Response:
        return Response(_dumps({"detail": detail}), status, media_type="application/json")

    @app.exception_handler(PayloadError)
    async def payload_error(request: Request, error: PayloadError) -> Response:
        return problem(error.status, error.detail)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:  # pragma: no cover
        log.exception("unexpected error serving %s", request.url.path)
        return problem(500, f"internal error ({type(error).__name__}); see the server log")

    def _decode(raw: bytes) -> Any:
        if not raw:
            raise PayloadError(400, "the request body is empty; send JSON")
        try:
            return json.loads(raw)
        except (ValueError, RecursionError) as error:
            raise PayloadError(400, f"the body is not valid JSON: {error}") from None

    @app.post(
        "/predict",
        summary="Score JSON records, columns or entity keys",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": predict_body_schema(primary)}},
            }
        },
        responses={
            200: {"description": "predictions, probabilities, prediction ids, model version"},
            400: {"description": "malformed JSON"},
            404: {"description": "an entity key is not in the online store"},
            413: {"description": "too many rows, or a body too large"},
            422: {"description": "a missing column, an unknown column or a wrong type"},
        },
    )
    async def predict(request: Request) -> Response:
        body = _decode(await _read_body(request, max_body_bytes))
        columns = parse_predict_body(body, max_rows)
        rows = len(next(iter(columns.values())))
        scored, role = await server.score(columns, rows)
        result: dict[str, Any] = {"predictions": scored.outputs.predictions}
        if scored.outputs.probabilities is not None:
            result["probabilities"] = scored.outputs.probabilities
        result["prediction_ids"] = scored.ids
        result["model"] = {"name": scored.served.name, "version": scored.served.version}
        result["served_by"] = role
        return Response(_dumps(result), media_type="application/json")

    # -- health and metrics -----------------------------------------------------------------

    @app.get("/health/live", summary="The process is up")
    async def live() -> Response:
        return Response(_dumps({"status": "live"}), media_type="application/json")

    @app.get("/health/ready", summary="A model is loaded and requests are taken")
    async def ready() -> Response:
        current = server.primary.current
        body = {
            "status": "ready" if server.ready else "stopping",
            "model": current.name,
            "version": current.version,
        }
        return Response(_dumps(body), 200 if server.ready else 503, media_type="application/json")

    @app.get("/metrics", summary="Prometheus metrics")
    async def prometheus() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    # -- Open Inference Protocol v2 ---------------------------------------------------------

    def served_named(name: str, version: str | None = None) -> ServedModel:
        current = server.primary.current
        if name != current.name:
            raise PayloadError(404, f"no model {name!r} here; this server serves {current.name!r}")
        if version is not None and version != current.label:
            raise PayloadError(
                404,
                f"model {name!r} version {version!r} is not served; version "
                f"{current.label or '-'} is",
            )
        return current

    @app.get("/v2", summary="OIP server metadata")
    async def v2() -> Response:
        body = {"name": "mloop", "version": __version__, "extensions": ["binary_tensor_data"]}
        return Response(_dumps(body), media_type="application/json")

    @app.get("/v2/health/live", summary="OIP liveness")
    async def v2_live() -> Response:
        return Response(_dumps({"live": True}), media_type="application/json")

    @app.get("/v2/health/ready", summary="OIP readiness")
    async def v2_ready() -> Response:
        return Response(
            _dumps({"ready": server.ready}),
            200 if server.ready else 503,
            media_type="application/json",
        )

    @app.get("/v2/models/{name}", summary="OIP model metadata")
    async def v2_model(name: str) -> Response:
        return Response(_dumps(model_metadata(served_named(name))), media_type="application/json")

    @app.get("/v2/models/{name}/versions/{version}", summary="OIP model metadata (a version)")
    async def v2_model_version(name: str, version: str) -> Response:
        served = served_named(name, version)
        return Response(_dumps(model_metadata(served)), media_type="application/json")

    @app.get("/v2/models/{name}/ready", summary="OIP model readiness")
    async def v2_model_ready(name: str) -> Response:
        served_named(name)
        return Response(
            _dumps({"name": name, "ready": server.ready}),
            200 if server.ready else 503,
            media_type="application/json",
        )

    @app.get("/v2/models/{name}/versions/{version}/ready", summary="OIP model readiness")
    async def v2_model_version_ready(name: str, version: str) -> Response:
        served_named(name, version)
        return Response(
            _dumps({"name": name, "ready": server.ready}),
            200 if server.ready else 503,
            media_type="application/json",
        )

    async def infer(request: Request, name: str, version: str | None) -> Response:
        served = served_named(name, version)
        raw = await _read_body(request, max_body_bytes)
        if not raw:
            raise PayloadError(400, "the request body is empty; send an OIP inference request")
        columns, rows, header = decode_infer(
            raw,
            request.headers.get("inference-header-content-length"),
            served.columns,
            served.name,
            max_rows,
        )
        scored, _ = await server.score(columns, rows)
        body = encode_infer(scored.served, scored.outputs, scored.ids, header)
        return Response(_dumps(body), media_type="application/json")

    infer_body = {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _infer_schema()}},
        }
    }

    @app.post("/v2/models/{name}/infer", summary="OIP inference", openapi_extra=infer_body)
    async def v2_infer(request: Request, name: str) -> Response:
        return await infer(request, name, None)

    @app.post(
        "/v2/models/{name}/versions/{version}/infer",
        summary="OIP inference (a version)",
        openapi_extra=infer_body,
    )
    async def v2_infer_version(request: Request, name: str, version: str) -> Response:
        return await infer(request, name, version)

    app.add_middleware(_MetricsMiddleware, metrics=metrics)
    return app


class _MetricsMiddleware:
    """Pure ASGI (no per-request task, unlike BaseHTTPMiddleware), so it costs microseconds."""

    def __init__(self, app: Any, metrics: ServerMetrics) -> None:
        self._wrapped = metrics.middleware(app)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._wrapped(scope, receive, send)


def _infer_schema() -> dict[str, Any]:
    tensor = {
        "type": "object",
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {"type": "string", "enum": ["BOOL", "INT64", "FP32", "FP64", "BYTES"]},
            "data": {"type": "array"},
            "parameters": {"type": "object"},
        },
    }
    return {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "inputs": {"type": "array", "items": tensor, "minItems": 1},
            "outputs": {
                "type": "array",
                "items": {"type": "object", "properties": {"name": {"type": "string"}}},
            },
            "parameters": {"type": "object"},
        },
    }

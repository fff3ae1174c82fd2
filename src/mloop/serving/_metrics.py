"""The model server's Prometheus metrics, in a registry of its own per app."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from mloop.errors import MissingExtraError
from mloop.serving._served import ServedModel

try:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_LATEST
except ImportError:  # pragma: no cover - ServerMetrics names the extra to install
    CollectorRegistry = None  # type: ignore[assignment,misc]
    CONTENT_TYPE_LATEST = "text/plain; version=0.0.4; charset=utf-8"

__all__ = ["CONTENT_TYPE_LATEST", "ServerMetrics"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServerMetrics:
    """Request counts and latency by route and status, errors, batch sizes, model versions."""

    def __init__(self) -> None:
        if CollectorRegistry is None:  # pragma: no cover
            raise MissingExtraError("prometheus-client", "server", "the model server's metrics")
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "mloop_serving_requests",
            "HTTP requests served, by route template, method and status code.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "mloop_serving_request_duration_seconds",
            "Time from request start to the end of the response, by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "mloop_serving_errors",
            "Requests answered with a 4xx or 5xx status, by route and status code.",
            ["route", "status"],
            registry=r,
        )
        self.batch_size = Histogram(
            "mloop_serving_batch_size",
            "Rows scored by one predict call, by role (primary, canary, shadow).",
            ["role"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.predictions = Counter(
            "mloop_serving_predictions",
            "Rows scored, by role and model version.",
            ["role", "model", "version"],
            registry=r,
        )
        self.model_info = Gauge(
            "mloop_serving_model_info",
            "1 for the model version each role serves now.",
            ["role", "model", "version"],
            registry=r,
        )
        self.swaps = Counter(
            "mloop_serving_model_swaps",
            "Times a role's alias moved and the new version was swapped in.",
            ["role"],
            registry=r,
        )
        self.refresh_failures = Counter(
            "mloop_serving_refresh_failures",
            "Failed attempts to check or load a moved alias (the old version keeps serving).",
            ["role"],
            registry=r,
        )
        self.shadow_dropped = Counter(
            "mloop_serving_shadow_dropped",
            "Shadow requests dropped because the shadow model's queue was full.",
            registry=r,
        )
        self._versions: dict[str, tuple[str, str]] = {}

    def observe_batch(self, role: str, served: ServedModel, rows: int) -> None:
        self.batch_size.labels(role).observe(rows)
        self.predictions.labels(role, served.name, served.label).inc(rows)

    def set_model(self, role: str, model: str, version: str) -> None:
        old = self._versions.get(role)
        if old is not None and old != (model, version):
            self.model_info.remove(role, *old)
        self._versions[role] = (model, version)
        self.model_info.labels(role, model, version).set(1)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """Pure ASGI middleware counting every HTTP request by its route template."""
        requests, latency, errors = self.requests, self.latency, self.errors

        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            started = time.perf_counter()
            status = 500

            async def send_status(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await app(scope, receive, send_status)
            finally:
                route = scope.get("route")
                path = getattr(route, "path", None) or "unmatched"
                code = str(status)
                requests.labels(path, scope.get("method", ""), code).inc()
                latency.labels(path).observe(time.perf_counter() - started)
                if status >= 400:
                    errors.labels(path, code).inc()

        return wrapped

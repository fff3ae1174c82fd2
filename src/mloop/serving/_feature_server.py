"""The online feature server: the feature store's lookups over HTTP, for non-Python callers.

``POST /get-online-features`` takes the body Feast's feature server takes,
``{"features": ["view:feature", ...], "entities": {"customer_id": [1, 2]}}`` (entity columns,
plus request fields for on-demand views), and answers like it: ``{"metadata": {"feature_names":
[...]}, "results": [{"values": [...], "statuses": [...]}, ...]}``, one result per column
(join keys first, then the features in request order). Bad input is a 4xx with a JSON body
naming the problem.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from mloop.errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from mloop.features import FeatureStore

__all__ = ["MAX_ENTITIES", "LookupRequest", "create_feature_app"]

MAX_ENTITIES = 10_000
MAX_BODY_BYTES = 4 * 1024 * 1024


class LookupRequest(BaseModel):
    """The body of ``POST /get-online-features`` (Feast's feature server takes the same)."""

    features: list[str] = Field(min_length=1, max_length=1000)
    entities: dict[str, list[Any]] = Field(min_length=1)
    full_feature_names: bool = False


def create_feature_app(store: FeatureStore) -> FastAPI:
    """A FastAPI app answering lookups from ``store``."""
    try:
        from fastapi import FastAPI, Request
        from fastapi.responses import JSONResponse
    except ImportError as error:
        from mloop.errors import MissingExtraError

        raise MissingExtraError("fastapi", "server", "the feature server") from error

    app = FastAPI(
        title="mloop feature server",
        description="Online feature lookups from the mloop feature store.",
    )

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Any) -> Any:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            return JSONResponse(
                {"detail": f"request body is {length} bytes; the limit is {MAX_BODY_BYTES}"},
                status_code=413,
            )
        return await call_next(request)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/get-online-features")
    async def get_online_features(body: LookupRequest) -> Any:
        lengths = {len(values) for values in body.entities.values()}
        if len(lengths) != 1:
            return JSONResponse(
                {"detail": "every entity column must have the same number of values"},
                status_code=422,
            )
        count = lengths.pop()
        if count > MAX_ENTITIES:
            return JSONResponse(
                {"detail": f"{count} entities asked for; the limit is {MAX_ENTITIES}"},
                status_code=413,
            )
        rows = [{key: values[i] for key, values in body.entities.items()} for i in range(count)]
        try:
            found = await asyncio.to_thread(
                store.get_online_features,
                body.features,
                rows,
                full_feature_names=body.full_feature_names,
            )
        except NotFoundError as error:
            return JSONResponse({"detail": str(error)}, status_code=404)
        except InvalidInputError as error:
            return JSONResponse({"detail": str(error)}, status_code=422)
        names = list(found.columns)
        results = []
        for name in names:
            statuses = found.statuses.get(name, ["present"] * count)
            results.append({"values": found.columns[name], "statuses": statuses})
        return {"metadata": {"feature_names": names}, "results": results}

    return app

"""``mloop serve MODEL_REF``: the online model server on uvicorn."""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer

from mloop.cli._console import stdout
from mloop.errors import MissingExtraError

CONFIG_ENV = "MLOOP_SERVE_CONFIG"  # how `--workers N` hands the options to each worker


def app_from_environment() -> Any:
    """The app each uvicorn worker builds (``--workers`` > 1), from ``MLOOP_SERVE_CONFIG``."""
    from mloop.serving import create_model_app

    options = json.loads(os.environ[CONFIG_ENV])
    return create_model_app(options.pop("model_ref"), **options)


def serve(
    model_ref: Annotated[
        str,
        typer.Argument(
            metavar="MODEL_REF",
            help="What to serve: churn@production, churn/3, or a package folder.",
            show_default=False,
        ),
    ],
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port.")] = 8080,
    canary: Annotated[
        str | None,
        typer.Option(
            "--canary",
            metavar="REF:PCT%",
            help="Send this share of requests to another version, e.g. churn@challenger:10%.",
        ),
    ] = None,
    shadow: Annotated[
        str | None,
        typer.Option(
            "--shadow",
            metavar="REF",
            help="Mirror every request to this version; its predictions are logged, not returned.",
        ),
    ] = None,
    max_batch: Annotated[
        int, typer.Option("--max-batch", min=1, help="Most rows scored by one predict call.")
    ] = 64,
    max_wait_ms: Annotated[
        float,
        typer.Option(
            "--max-wait-ms", min=0, help="Longest wait for more rows under concurrent load."
        ),
    ] = 2.0,
    poll_interval: Annotated[
        float,
        typer.Option(
            "--poll-interval",
            min=0,
            help="Seconds between checks that the alias moved (0: never; no hot swap).",
        ),
    ] = 5.0,
    workers: Annotated[int, typer.Option("--workers", min=1, help="uvicorn worker processes.")] = 1,
) -> None:
    """Serve a registered model over HTTP: POST /predict (JSON records, columns or entity keys),
    the Open Inference Protocol v2 under /v2, /metrics, /health/ready, OpenAPI docs at /docs.

    The model is swapped for the new version, without dropping requests, when its alias moves.
    """
    try:
        import uvicorn
    except ImportError as error:
        raise MissingExtraError("uvicorn", "server", "mloop serve") from error
    from mloop.serving import create_model_app

    options: dict[str, Any] = {
        "canary": canary,
        "shadow": shadow,
        "max_batch": max_batch,
        "max_wait_ms": max_wait_ms,
        "poll_interval": poll_interval or None,
    }
    # Load in this process first: a wrong reference fails here, with mloop's message.
    app = create_model_app(model_ref, **options)
    served = app.state.server.primary.current
    where = f"http://{host}:{port}"
    stdout().print(
        f"Serving {served.name} version {served.label or '-'} ({model_ref}) on {where} "
        f"- POST {where}/predict, docs at {where}/docs (Ctrl-C stops)"
    )
    if workers == 1:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
        return
    os.environ[CONFIG_ENV] = json.dumps({"model_ref": model_ref, **options})
    uvicorn.run(
        "mloop.cli._serve:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )

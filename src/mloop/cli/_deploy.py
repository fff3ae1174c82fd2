"""``mloop deploy``: a Docker build context, Kubernetes manifests, or local servers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from mloop.cli._console import stdout
from mloop.errors import InvalidValueError, MloopError

TARGETS = ("docker", "kubernetes", "local")


def deploy(
    model: Annotated[
        str,
        typer.Argument(
            metavar="MODEL_REF",
            help="The model: NAME@ALIAS, NAME/VERSION or a package folder.",
        ),
    ],
    target: Annotated[
        str,
        typer.Option("--target", "-t", metavar="TARGET", help="docker, kubernetes or local."),
    ] = "docker",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="DIR",
            help="Folder to write (new or empty; default: deploy/NAME-vVERSION/TARGET).",
        ),
    ] = None,
    replicas: Annotated[
        int,
        typer.Option("--replicas", "-n", min=1, help="Servers (local) or pods (kubernetes)."),
    ] = 1,
    max_replicas: Annotated[
        int | None,
        typer.Option("--max-replicas", min=1, help="Kubernetes: the autoscaler's upper bound."),
    ] = None,
    port: Annotated[
        int,
        typer.Option(
            "--port", "-p", min=1, max=65535, help="Port (local: the first of consecutive ones)."
        ),
    ] = 8000,
    host: Annotated[
        str, typer.Option("--host", help="Local: the address the servers listen on.")
    ] = "127.0.0.1",
    image: Annotated[
        str | None,
        typer.Option("--image", metavar="IMAGE", help="Image tag (default: mloop-NAME:VERSION)."),
    ] = None,
) -> None:
    """Deploy a model: a Docker build context, Kubernetes manifests, or local servers.

    `--target docker` writes a build context: the model package, requirements pinned to the
    versions it was saved with, and a Dockerfile (non-root, health check, `mloop serve`).

    `--target kubernetes` writes a Deployment, a Service and a HorizontalPodAutoscaler
    (readiness and liveness probes, Prometheus scrape annotations) for that image.

    `--target local` starts `--replicas` servers on consecutive ports from `--port` and keeps
    them running until Ctrl-C.
    """
    from mloop.serving import deploy as run_deploy

    if target not in TARGETS:
        raise InvalidValueError(f"--target must be one of {', '.join(TARGETS)}, not {target!r}")
    console = stdout()
    result = run_deploy(
        model,
        target=target,  # type: ignore[arg-type]
        output=output,
        replicas=replicas,
        max_replicas=max_replicas,
        port=port,
        host=host,
        image=image,
    )
    if target != "local":
        assert result.folder is not None
        console.print(f"Wrote the {target} deployment of {result.model} to {result.folder}:")
        for path in result.files:
            console.print(f"  {path.relative_to(result.folder)}{'/' if path.is_dir() else ''}")
        if target == "docker":
            tag = image or f"the tag in {result.folder / 'Dockerfile'}"
            console.print(f"Build it with: docker build -t {tag} {result.folder}")
        else:
            console.print(f"Apply it with: kubectl apply -f {result.folder}")
        return
    from mloop.serving import LocalDeployment

    assert isinstance(result, LocalDeployment)
    with result:
        console.print(f"Serving {result.model} with {len(result.urls)} server(s):")
        for url in result.urls:
            console.print(f"  {url}  (POST {url}/predict, metrics at {url}/metrics)")
        console.print("Press Ctrl-C to stop them.")
        try:
            while all(process.poll() is None for process in result.processes):
                time.sleep(0.5)
        except KeyboardInterrupt:
            console.print("Stopping the servers...")
            return
    failed = [url for url, p in zip(result.urls, result.processes, strict=True) if p.returncode]
    raise MloopError(
        f"server(s) {', '.join(failed) or 'unknown'} stopped on their own; see their output in "
        f"{result.logs[0].parent}"
    )

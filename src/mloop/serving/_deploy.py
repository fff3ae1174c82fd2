"""Deployment: a Docker build context, Kubernetes manifests, or local server processes.

    deploy("churn@production", target="docker", output="deploy/docker")
    deploy("churn@production", target="kubernetes", output="deploy/k8s", replicas=3)
    with deploy("churn@production", target="local", replicas=2, port=8000) as running:
        print(running.urls)

**docker** writes a build context: the verified model package (``model/``, copied from the
local package cache), ``requirements.txt`` pinned to the library versions the package was saved
with (mloop itself with its ``server`` extra), and a Dockerfile on the Python version it was
saved with, that installs them, runs as an unprivileged user, checks ``/health/ready`` and
starts ``mloop serve`` on the package. ``wheels/`` is searched before the package index, for
wheels that are not on it (a local build of mloop, say).

**kubernetes** writes a Deployment (readiness and liveness probes on ``/health/ready`` and
``/health/live``, Prometheus scrape annotations, a non-root security context, a volume for the
prediction log), a Service and a HorizontalPodAutoscaler (CPU-based, ``replicas`` to
``max_replicas``), for an image built from the docker context.

**local** starts ``replicas`` processes of ``mloop serve`` on consecutive ports from ``port``
and waits until each answers ``/health/ready``. They load the package from the local package
cache, so a restart does not fetch or unzip it again.

Each deployment is recorded as a run (kind ``deployment``) whose input is the model version.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import yaml

from mloop.artifacts import ArtifactStore
from mloop.backends import Backends, backends
from mloop.config import Settings
from mloop.errors import ConflictError, InvalidInputError, InvalidValueError, MloopError
from mloop.registry import Model, get_version, load_model, parse_ref
from mloop.store import Store, check_model_name

__all__ = ["Deployment", "LocalDeployment", "deploy", "kubernetes_name"]

Target = Literal["docker", "kubernetes", "local"]
TARGETS = ("docker", "kubernetes", "local")
CONTAINER_PORT = 8000
APP_DIR = "/srv/mloop"
UID = 10001
MAX_REPLICAS = 1000
READY_TIMEOUT = 120.0


@dataclass
class Deployment:
    """What ``deploy`` wrote (docker, kubernetes) or started (local)."""

    target: str
    model: str  # the exact version deployed, "churn/3" (or the package path)
    run_id: str
    folder: Path | None = None
    files: list[Path] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)


class LocalDeployment(Deployment):
    """Server processes on this machine; ``stop()`` (or leaving ``with``) ends them."""

    def __init__(self, model: str, run_id: str, processes: list[subprocess.Popen[bytes]],
                 urls: list[str], logs: list[Path]) -> None:  # fmt: skip
        super().__init__("local", model, run_id, urls=urls)
        self.processes = processes
        self.logs = logs

    def stop(self, timeout: float = 20.0) -> None:
        """Ask every server to stop (SIGTERM), then kill the ones that do not in ``timeout``."""
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + timeout
        for process in self.processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> LocalDeployment:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def kubernetes_name(text: str) -> str:
    """A DNS-1123 label for ``text``: lowercase letters, digits and '-', at most 63 characters
    (long or altered names keep a hash of the original, so two models never share one)."""
    label = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "model"
    if label != text or len(label) > 63:
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        label = f"{label[:54].rstrip('-')}-{digest}"
    if not label[0].isalpha():
        label = f"m-{label}"[:63].rstrip("-")
    return label


def _requirements(model: Model) -> list[str]:
    """requirements.txt lines: every library the package was saved with, pinned."""
    lines = []
    for name, version in sorted(model.metadata.requirements.items()):
        if name == "python":
            continue
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name) or not re.fullmatch(
            r"[A-Za-z0-9.+!_-]+", version
        ):
            raise InvalidValueError(
                f"the model package records requirement {name!r} {version!r}, which is not a "
                "package name and version pip accepts; re-save the model"
            )
        lines.append(f"mloop[server]=={version}" if name == "mloop" else f"{name}=={version}")
    return lines


def _python_version(model: Model) -> str:
    version = model.metadata.requirements.get("python", "")
    if not re.fullmatch(r"3\.\d+(\.\d+)?", version):
        raise InvalidValueError(
            f"the model package records Python {version!r}; the Dockerfile needs a version "
            "like 3.11.7 - re-save the model with this mloop"
        )
    return version


DOCKERFILE = """\
# Generated by `mloop deploy --target docker` for {model} (package sha256 {digest}).
# Build and run:  docker build -t {image} . && docker run -p {port}:{port} {image}
FROM python:{python}-slim

ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    MLOOP_HOME={app} \\
    MLOOP_PREDICTION_LOG={app}/predictions

RUN groupadd --gid {uid} mloop \\
    && useradd --no-log-init --create-home --uid {uid} --gid {uid} mloop
WORKDIR {app}

# The libraries the model was saved with, pinned; wheels/ is searched before the index.
COPY requirements.txt /tmp/requirements.txt
COPY wheels/ /tmp/wheels/
RUN pip install --no-cache-dir --find-links /tmp/wheels -r /tmp/requirements.txt \\
    && rm -rf /tmp/wheels /tmp/requirements.txt

# Served from a folder named after the model: the prediction log records that name.
COPY --chown={uid}:{uid} model/ {app}/models/{name}/
RUN mkdir -p {app}/predictions && chown {uid}:{uid} {app} {app}/predictions
USER {uid}:{uid}

EXPOSE {port}
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \\
    CMD ["python", "-c", \\
         "import urllib.request as u; u.urlopen('http://127.0.0.1:{port}/health/ready', timeout=2)"]
ENTRYPOINT ["mloop", "serve", "{app}/models/{name}", "--host", "0.0.0.0", "--port", "{port}"]
"""

DOCKERIGNORE = """\
# Only what the Dockerfile copies goes into the build.
*
!Dockerfile
!requirements.txt
!model/
!wheels/
"""

WHEELS_README = """\
Wheels here are installed before the package index is asked (pip --find-links): put a wheel
of mloop here if your index does not have mloop {version}.
"""


def _write_docker(
    model: Model, name: str, exact: str, folder: Path, image: str, port: int
) -> list[Path]:
    if not model.folder.is_dir():
        raise ConflictError(f"the package of {exact} is not on disk at {model.folder}")
    dockerfile = DOCKERFILE.format(
        model=exact,
        digest=model.metadata.digest or "unknown (a package folder)",
        image=image,
        python=_python_version(model),
        name=name,
        app=APP_DIR,
        uid=UID,
        port=port,
    )
    mloop_version = model.metadata.requirements.get("mloop", "")
    files = {
        "Dockerfile": dockerfile,
        ".dockerignore": DOCKERIGNORE,
        "requirements.txt": "\n".join(_requirements(model)) + "\n",
        "wheels/README.txt": WHEELS_README.format(version=mloop_version),
    }
    written = []
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    shutil.copytree(model.folder, folder / "model")
    written.append(folder / "model")
    return written


def kubernetes_manifests(
    name: str,
    image: str,
    *,
    model: str,
    replicas: int = 1,
    max_replicas: int | None = None,
    port: int = CONTAINER_PORT,
    cpu_target: int = 70,
) -> dict[str, dict[str, Any]]:
    """Deployment, Service and HorizontalPodAutoscaler for an image of ``mloop serve``."""
    app = kubernetes_name(f"mloop-{name}")
    labels = {"app.kubernetes.io/name": app, "app.kubernetes.io/managed-by": "mloop"}
    probe = {"httpGet": {"path": "/health/ready", "port": "http"}, "periodSeconds": 5}
    container = {
        "name": "server",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "env": [{"name": "MLOOP_PREDICTION_LOG", "value": f"{APP_DIR}/predictions"}],
        "readinessProbe": {**probe, "initialDelaySeconds": 2, "failureThreshold": 3},
        "livenessProbe": {
            "httpGet": {"path": "/health/live", "port": "http"},
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "startupProbe": {**probe, "failureThreshold": 60},
        "resources": {
            "requests": {"cpu": "500m", "memory": "512Mi"},
            "limits": {"memory": "2Gi"},
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": UID,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "predictions", "mountPath": f"{APP_DIR}/predictions"}],
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": app, "labels": labels, "annotations": {"mloop.dev/model": model}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": app}},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(port),
                        "prometheus.io/path": "/metrics",
                        "mloop.dev/model": model,
                    },
                },
                "spec": {
                    "containers": [container],
                    "volumes": [{"name": "predictions", "emptyDir": {}}],
                    "terminationGracePeriodSeconds": 30,
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": app, "labels": labels},
        "spec": {
            "selector": {"app.kubernetes.io/name": app},
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    autoscaler = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": app, "labels": labels},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": app},
            "minReplicas": replicas,
            "maxReplicas": max_replicas if max_replicas is not None else max(replicas * 4, 2),
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": cpu_target},
                    },
                }
            ],
        },
    }
    return {"deployment": deployment, "service": service, "hpa": autoscaler}


def _write_kubernetes(
    name: str, image: str, exact: str, folder: Path, replicas: int, max_replicas: int | None
) -> list[Path]:
    manifests = kubernetes_manifests(
        name, image, model=exact, replicas=replicas, max_replicas=max_replicas
    )
    written = []
    for kind, body in manifests.items():
        path = folder / f"{kind}.yaml"
        path.write_text(
            "# Generated by `mloop deploy --target kubernetes`; apply with: "
            "kubectl apply -f .\n" + yaml.safe_dump(body, sort_keys=False),
            encoding="utf-8",
        )
        written.append(path)
    return written


def _wait_ready(url: str, process: subprocess.Popen[bytes], log_file: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            tail = log_file.read_text(errors="replace")[-2000:].strip()
            raise MloopError(
                f"the server for {url} exited with status {process.returncode} before it was "
                f"ready; its output ends: {tail or '(nothing)'}"
            )
        try:
            with urllib.request.urlopen(f"{url}/health/ready", timeout=2) as answer:  # noqa: S310
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise MloopError(
                f"the server for {url} did not become ready within {timeout:.0f} s; see its "
                f"output in {log_file}"
            )
        time.sleep(0.1)


def _start_local(
    ref: str, exact: str, run_id: str, replicas: int, host: str, port: int,
    extra_args: Sequence[str], timeout: float, folder: Path,
) -> LocalDeployment:  # fmt: skip
    processes: list[subprocess.Popen[bytes]] = []
    urls, logs = [], []
    shown = host if ":" not in host else f"[{host}]"
    try:
        for index in range(replicas):
            log_file = folder / f"server-{port + index}.log"
            with log_file.open("wb") as output:
                command = [sys.executable, "-m", "mloop", "serve", ref, "--host", host,
                           "--port", str(port + index), *extra_args]  # fmt: skip
                processes.append(subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT))
            urls.append(f"http://{shown}:{port + index}")
            logs.append(log_file)
        for url, process, log_file in zip(urls, processes, logs, strict=True):
            _wait_ready(url, process, log_file, timeout)
    except BaseException:
        LocalDeployment(exact, run_id, processes, urls, logs).stop(timeout=5)
        raise
    return LocalDeployment(exact, run_id, processes, urls, logs)


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidValueError(
            f"{name} must be a whole number from {low} to {high}, not {value!r}"
        )
    return value


def _output_folder(output: str | os.PathLike[str] | None, default: Path) -> Path:
    folder = Path(output) if output is not None else default
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InvalidValueError(
            f"output folder {str(folder)!r} is not empty; give a new or empty folder so that "
            "nothing of yours is overwritten"
        )
    return folder


def deploy(
    model_ref: str,
    *,
    target: Target = "docker",
    output: str | os.PathLike[str] | None = None,
    replicas: int = 1,
    max_replicas: int | None = None,
    port: int = CONTAINER_PORT,
    host: str = "127.0.0.1",
    image: str | None = None,
    serve_args: Sequence[str] = (),
    ready_timeout: float = READY_TIMEOUT,
    store: Store | None = None,
    artifacts: ArtifactStore | None = None,
    settings: Settings | None = None,
) -> Deployment:
    """Deploy ``model_ref`` (``churn@production``, ``churn/3``, a package folder) to
    ``target``; see the module docstring. ``output`` defaults to ``deploy/<name>-v<version>/
    <target>`` in the project folder; it must be new or empty."""
    from mloop.tracking import start_run  # not at the top: it adds to `mloop serve`'s start

    if target not in TARGETS:
        raise InvalidValueError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    replicas = _check_int("replicas", replicas, 1, MAX_REPLICAS)
    port = _check_int("port", port, 1, 65535)
    if max_replicas is not None:
        max_replicas = _check_int("max_replicas", max_replicas, replicas, MAX_REPLICAS)
    if target == "local" and port + replicas - 1 > 65535:
        raise InvalidValueError(f"{replicas} servers from port {port} would pass port 65535")
    if isinstance(serve_args, str):
        raise InvalidValueError("serve_args must be a list of arguments, not one string")
    b: Backends = backends(store, artifacts, settings)
    parsed = parse_ref(model_ref)
    if parsed.path is not None:
        exact = str(parsed.path.resolve())
        model = load_model(exact, settings=b.settings)
        default = parsed.path.resolve().name
        try:
            name = check_model_name(parsed.path.resolve().stem)
        except InvalidInputError:
            name = "model"  # the folder's name cannot name a model (the log would refuse it)
    else:
        model = load_model(model_ref, store=b.store, artifacts=b.artifacts, settings=b.settings)
        exact = model.metadata.version_ref
        name = model.metadata.name or "model"
        default = f"{name}-v{model.metadata.version}"
    tag = image or f"mloop-{kubernetes_name(name)}:{model.metadata.version or 'latest'}"
    if target == "local":
        folder = Path(tempfile.mkdtemp(prefix="mloop-deploy-"))
    else:
        folder = _output_folder(output, b.settings.home / "deploy" / default / target)
    run = start_run(
        experiment="deployments",
        name=f"deploy {exact} to {target}",
        kind="deployment",
        params={
            "model": exact,
            "target": target,
            "replicas": replicas,
            "port": port,
            "image": tag if target != "local" else "",
            "output": str(folder),
        },
        parent=None,
        store=b.store,
        artifacts=b.artifacts,
        settings=b.settings,
    )
    with run:
        if parsed.path is None:
            version = get_version(exact, store=b.store, settings=b.settings)
            b.store.link_artifact(run.id, version.artifact_id, "input", f"models/{exact}")
        if target == "local":
            # The servers serve the reference as given: they follow the alias if it moves.
            ref = exact if parsed.path is not None else str(model_ref)
            started = _start_local(
                ref, exact, run.id, replicas, host, port, serve_args, ready_timeout, folder
            )
            run.set_tags({"urls": " ".join(started.urls)})
            return started
        folder.mkdir(parents=True, exist_ok=True)
        try:
            if target == "docker":
                files = _write_docker(model, name, exact, folder, tag, port)
            else:
                files = _write_kubernetes(name, tag, exact, folder, replicas, max_replicas)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        for path in files:
            if path.is_file():
                run.log_artifact(path, name=f"{target}/{path.relative_to(folder).as_posix()}")
    return Deployment(target, exact, run.id, folder=folder, files=files)

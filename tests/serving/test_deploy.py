"""Deployment: Docker build contexts (linted), Kubernetes manifests (validated), local servers."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import kubernetes_validate
import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

import mloop
from mloop.backends import backends
from mloop.errors import InvalidValueError, MloopError, NotFoundError
from mloop.registry import get_version, load_model
from mloop.serving._deploy import deploy, kubernetes_manifests, kubernetes_name

HADOLINT = Path(sys.executable).with_name("hadolint")
K8S_VERSION = "1.30.0"  # a release clusters run widely; kubernetes-validate ships its schemas


@pytest.fixture
def churn(isolated_settings: Path) -> str:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"age": rng.integers(18, 90, 200), "income": rng.normal(50, 15, 200)})
    model = LogisticRegression().fit(frame, frame["income"] > 50)
    with mloop.start_run(experiment="churn") as run:
        run.log_model(model, name="churn", input_example=frame.head(), alias="production")
    return "churn@production"


def test_docker_context_is_pinned_linted_and_holds_the_package(
    churn: str, isolated_settings: Path
) -> None:
    result = deploy(churn, target="docker")
    folder = isolated_settings / "deploy" / "churn-v1" / "docker"
    assert result.folder == folder
    assert result.model == "churn/1"
    version = get_version("churn/1")
    requirements = version.meta["requirements"]

    dockerfile = (folder / "Dockerfile").read_text()
    assert f"FROM python:{requirements['python']}-slim\n" in dockerfile
    assert version.digest in dockerfile
    assert re.search(r"^USER 10001:10001$", dockerfile, re.M)
    assert "HEALTHCHECK" in dockerfile
    assert "/health/ready" in dockerfile
    entry = json.loads(dockerfile.split("ENTRYPOINT ", 1)[1].splitlines()[0])
    assert entry == [
        "mloop", "serve", "/srv/mloop/models/churn", "--host", "0.0.0.0", "--port", "8000"
    ]  # fmt: skip
    assert "COPY --chown=10001:10001 model/ /srv/mloop/models/churn/\n" in dockerfile
    pins = (folder / "requirements.txt").read_text().split()
    assert f"scikit-learn=={requirements['scikit-learn']}" in pins
    assert f"mloop[server]=={requirements['mloop']}" in pins
    assert not any(line.startswith("python") for line in pins)
    # The package is the registered one, byte for byte: it loads from the context.
    copied = load_model(folder / "model")
    assert copied.metadata.requirements == requirements
    assert copied.predict(pd.DataFrame({"age": [30], "income": [70.0]})).tolist() == [True]

    lint = subprocess.run(
        [str(HADOLINT), "--no-color", str(folder / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (lint.returncode, lint.stdout, lint.stderr) == (0, "", "")

    run = mloop.get_run(result.run_id)
    assert (run.kind, run.params["target"], run.params["model"]) == (
        "deployment",
        "docker",
        "churn/1",
    )


def test_hadolint_does_flag_a_bad_dockerfile(tmp_path: Path) -> None:
    """The lint above can fail: hadolint reports what our template avoids."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install flask\nUSER root\n")
    lint = subprocess.run([str(HADOLINT), "--no-color", str(bad)], capture_output=True, text=True)
    assert lint.returncode != 0
    assert "DL3007" in lint.stdout
    assert "DL3013" in lint.stdout


def documents(folder: Path) -> dict[str, dict[str, Any]]:
    return {p.stem: yaml.safe_load(p.read_text()) for p in sorted(folder.glob("*.yaml"))}


def test_kubernetes_manifests_validate_strictly(churn: str, tmp_path: Path) -> None:
    result = deploy(
        churn,
        target="kubernetes",
        output=tmp_path / "k8s",
        replicas=3,
        max_replicas=9,
        image="registry.example.com/churn:1",
    )
    docs = documents(tmp_path / "k8s")
    assert sorted(docs) == ["deployment", "hpa", "service"]
    for body in docs.values():
        kubernetes_validate.validate(body, K8S_VERSION, strict=True)
    deployment = docs["deployment"]
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert deployment["spec"]["replicas"] == 3
    assert container["image"] == "registry.example.com/churn:1"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert pod["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
    assert container["securityContext"]["runAsNonRoot"] is True
    assert docs["hpa"]["spec"]["minReplicas"] == 3
    assert docs["hpa"]["spec"]["maxReplicas"] == 9
    assert docs["hpa"]["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert docs["service"]["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert mloop.get_run(result.run_id).status == "finished"


def test_kubernetes_validation_can_fail() -> None:
    body = kubernetes_manifests("churn", "img:1", model="churn/1")["deployment"]
    body["spec"]["replicas"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(body, K8S_VERSION, strict=True)
    body = kubernetes_manifests("churn", "img:1", model="churn/1")["service"]
    body["spec"]["colour"] = "blue"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(body, K8S_VERSION, strict=True)


@given(st.text(min_size=1, max_size=300))
def test_any_model_name_gives_a_valid_kubernetes_name(text: str) -> None:
    label = kubernetes_name(text)
    assert re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", label), label


@pytest.mark.parametrize("name", ["Churn_Model.v2", "9lives", "x" * 200, "--", "ünïcode", "a"])
def test_manifests_of_awkward_names_validate(name: str) -> None:
    for body in kubernetes_manifests(name, "img:1", model=name).values():
        kubernetes_validate.validate(body, K8S_VERSION, strict=True)


def test_kubernetes_names_keep_plain_names_and_separate_altered_ones() -> None:
    assert kubernetes_name("mloop-churn") == "mloop-churn"
    assert kubernetes_name("Churn") != kubernetes_name("churn")
    assert kubernetes_name("a_b") != kubernetes_name("a.b")
    assert len(kubernetes_name("x" * 500)) <= 63


def test_bad_arguments(churn: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidValueError, match="target must be one of"):
        deploy(churn, target="ftp")  # type: ignore[arg-type]
    for replicas in (0, -1, 1.5, True, 10_000):
        with pytest.raises(InvalidValueError, match="replicas"):
            deploy(churn, target="kubernetes", replicas=replicas)  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError, match="max_replicas"):
        deploy(churn, target="kubernetes", replicas=3, max_replicas=2)
    with pytest.raises(InvalidValueError, match="port"):
        deploy(churn, target="docker", port=70_000)
    with pytest.raises(InvalidValueError, match="pass port 65535"):
        deploy(churn, target="local", port=65535, replicas=2)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep me")
    with pytest.raises(InvalidValueError, match="not empty"):
        deploy(churn, target="docker", output=tmp_path / "full")
    assert (tmp_path / "full" / "mine.txt").read_text() == "keep me"
    with pytest.raises(NotFoundError):
        deploy("churn@nosuchalias", target="docker", output=tmp_path / "new")
    assert not (tmp_path / "new").exists()


# -- local servers ------------------------------------------------------------------------------

SCORER = """
class Doubler:
    def __init__(self, factor):
        self.factor = factor

    def predict(self, frame):
        return (frame["x"] * self.factor).to_numpy()
"""


def free_ports(count: int) -> int:
    """A port p with p .. p+count-1 all free right now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        if first + count > 65535:
            continue
        sockets = []
        try:
            for port in range(first, first + count):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
        return first
    raise RuntimeError("no free consecutive ports")


def post(url: str, body: Any) -> Any:
    request = urllib.request.Request(
        f"{url}/predict",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


@pytest.fixture
def doubler(isolated_settings: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A pure-Python model registered as doubler@production, importable by servers."""
    (tmp_path / "doubler_module.py").write_text(SCORER)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # the server processes import it too
    from doubler_module import Doubler  # type: ignore[import-not-found]

    with mloop.start_run(experiment="doubler") as run:
        run.log_model(
            Doubler(2.0),
            name="doubler",
            input_example=pd.DataFrame({"x": [1.0, 2.5]}),
            alias="production",
        )
    return "doubler@production"


@pytest.mark.slow
def test_local_servers_answer_and_restart_from_the_package_cache(
    doubler: str, isolated_settings: Path
) -> None:
    port = free_ports(2)
    started = time.perf_counter()
    with deploy(doubler, target="local", replicas=2, port=port) as running:
        assert running.urls == [f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}"]
        for url in running.urls:
            answer = post(url, {"records": [{"x": 1.5}, {"x": -2.0}]})
            assert json.dumps(answer).count("3.0") == 1, answer
            assert "-4.0" in json.dumps(answer)
    cold = time.perf_counter() - started
    assert all(p.returncode is not None for p in running.processes)

    digest = get_version("doubler/1").digest
    cached = isolated_settings / ".mloop" / "cache" / "models" / digest
    before = cached.stat().st_ino
    # Without the blob in the artifact store, a restart can only use the unzipped package.
    artifacts = backends().artifacts
    assert artifacts.delete(digest)
    assert not artifacts.exists(digest)
    with deploy(doubler, target="local", replicas=1, port=port) as again:
        assert "6.0" in json.dumps(post(again.urls[0], [{"x": 3.0}]))
    assert cached.stat().st_ino == before
    assert not list(cached.parent.glob(".tmp-*"))
    print(f"two local servers: start to ready and answered in {cold:.2f} s")


@pytest.mark.slow
def test_a_server_that_cannot_start_is_reported(
    doubler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", "")  # the servers cannot import the model's class now
    with pytest.raises(MloopError, match="exited with status"):
        deploy(doubler, target="local", replicas=1, port=free_ports(1), ready_timeout=120)


def test_a_package_folder_deploys(tmp_path: Path) -> None:
    frame = pd.DataFrame({"age": [20, 30, 40, 50], "income": [10.0, 80.0, 20.0, 90.0]})
    model = LogisticRegression().fit(frame, frame["income"] > 50)
    mloop.registry.save_model(model, tmp_path / "pkg", input_example=frame)
    result = deploy(str(tmp_path / "pkg"), target="docker", output=tmp_path / "ctx")
    assert (tmp_path / "ctx" / "model" / "mloop-model.json").is_file()
    assert result.model == str((tmp_path / "pkg").resolve())
    shutil.rmtree(tmp_path / "ctx")

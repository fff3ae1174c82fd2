"""``mloop serve``: errors before serving, and a real server process that answers and stops."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mloop.registry import register

from .helpers import Invoke


def _register(home: Path) -> list[dict[str, float]]:
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    y = (x["a"] + x["b"] > 0).astype(int)
    register(LogisticRegression().fit(x, y), "tiny", input_example=x.iloc[:3], alias="production")
    return x.iloc[:2].to_dict("records")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unknown_model_fails_with_one_line_before_serving(cli: Invoke, project: Path) -> None:
    _register(project)
    result = cli("serve", "nosuch@production")
    assert result.exit_code == 1
    assert "nosuch" in result.output
    assert "Traceback" not in result.output
    bad = cli("serve", "tiny@production", "--canary", "tiny/1")
    assert bad.exit_code == 1
    assert "MODEL_REF:PCT%" in bad.output
    usage = cli("serve", "tiny@production", "--max-batch", "0")
    assert usage.exit_code == 2


def test_help_lists_the_options(cli: Invoke) -> None:
    result = cli("serve", "--help")
    assert result.exit_code == 0
    for option in ("--canary", "--shadow", "--max-batch", "--max-wait-ms", "--workers"):
        assert option in result.output


def test_the_workers_factory_builds_the_app_from_the_environment(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from mloop.cli._serve import CONFIG_ENV, app_from_environment

    rows = _register(project)
    options = {"model_ref": "tiny@production", "max_batch": 8, "poll_interval": None}
    monkeypatch.setenv(CONFIG_ENV, json.dumps(options))
    with TestClient(app_from_environment()) as client:
        result = client.post("/predict", json=rows).json()
    assert result["model"] == {"name": "tiny", "version": 1}
    assert len(result["predictions"]) == 2


def _serve(project: Path, port: int) -> subprocess.Popen[str]:
    """``mloop serve tiny@production`` in a process of its own, once it answers /health/ready."""
    script = Path(sys.executable).with_name("mloop")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOOP_")}
    process = subprocess.Popen(
        [str(script), "serve", "tiny@production", "--port", str(port), "--poll-interval", "0"],
        cwd=project,
        env={**env, "MLOOP_HOME": str(project)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "mloop serve did not become ready"
        try:
            if httpx2.get(f"http://127.0.0.1:{port}/health/ready").status_code == 200:
                return process
        except httpx2.TransportError:
            time.sleep(0.1)


@pytest.mark.slow
def test_a_killed_server_lost_no_prediction_it_answered(project: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from mloop.serving import read_predictions

    rows = _register(project)
    port = _free_port()
    process = _serve(project, port)
    url = f"http://127.0.0.1:{port}/predict"
    try:
        with httpx2.Client(timeout=30) as client, ThreadPoolExecutor(8) as pool:
            # Concurrent single rows (micro-batched), then SIGKILL at once: no clean shutdown,
            # no flush, no compaction.
            answers = list(
                pool.map(lambda n: client.post(url, json=rows[n % 2]).json(), range(200))
            )
            process.kill()
    finally:
        process.kill()
        process.communicate(timeout=60)
    answered = {i for answer in answers for i in answer["prediction_ids"]}
    assert len(answered) == 200
    logged = read_predictions(model="tiny", folder=project / ".mloop" / "predictions")
    assert set(logged["prediction_id"]) >= answered
    assert logged["prediction_id"].is_unique


@pytest.mark.slow
def test_mloop_serve_process_answers_and_stops_on_ctrl_c(project: Path) -> None:
    rows = _register(project)
    port = _free_port()
    process = _serve(project, port)
    url = f"http://127.0.0.1:{port}"
    try:
        answer = httpx2.post(f"{url}/predict", json={"records": rows}).json()
        assert answer["model"] == {"name": "tiny", "version": 1}
        assert len(answer["prediction_ids"]) == 2
        bad = httpx2.post(f"{url}/predict", json={"records": [{"a": 1.0}]})
        assert bad.status_code == 422
        assert "'b'" in bad.json()["detail"]
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert f"on http://127.0.0.1:{port}" in out

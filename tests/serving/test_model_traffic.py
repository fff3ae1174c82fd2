"""Micro-batching, hot swap under load, canary and shadow, on a real uvicorn server."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import httpx2
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from mloop.registry import load_model, set_alias
from mloop.serving import create_model_app
from mloop.serving._prediction_log import read_predictions

from ._live import live_server
from .conftest import FEATURES, MODEL, Project


def _rows(project: Project, patients: list[int]) -> list[dict[str, Any]]:
    frame = project.frame.set_index("patient_id")
    return [{f: float(frame.loc[p, f]) for f in FEATURES} for p in patients]


def _metric(url: str, name: str, **labels: str) -> float:
    text = httpx2.get(f"{url}/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    raise AssertionError(f"no sample {name} {labels}")


def test_concurrent_requests_share_predict_calls_and_each_gets_its_own_rows(
    project: Project,
) -> None:
    app = create_model_app(
        f"{MODEL}@production", poll_interval=None, prediction_log=False, max_wait_ms=5
    )
    model = load_model(f"{MODEL}/1")
    patients = list(range(160))
    expected = model.predict_proba(_rows(project, patients)).tolist()
    bad = {p for p in patients if p % 10 == 9}  # bad requests in the middle of good ones

    async def send_all(url: str) -> list[tuple[int, int, Any]]:
        limits = httpx2.Limits(max_connections=32)
        async with httpx2.AsyncClient(base_url=url, limits=limits) as client:

            async def send(patient: int) -> tuple[int, int, Any]:
                if patient in bad:
                    body: Any = {"records": [dict.fromkeys(FEATURES, "x")]}
                else:
                    body = {"records": _rows(project, [patient])}
                response = await client.post("/predict", json=body)
                return patient, response.status_code, response.json()

            return list(await asyncio.gather(*(send(p) for p in patients)))

    with live_server(app) as url:
        answers = asyncio.run(send_all(url))
        calls = _metric(url, "mloop_serving_batch_size_count", role="primary")
        rows = _metric(url, "mloop_serving_batch_size_sum", role="primary")
    for patient, status, body in answers:
        if patient in bad:
            assert status == 422
            assert "mean_radius" in body["detail"]
        else:
            assert status == 200, body
            np.testing.assert_allclose(body["probabilities"][0], expected[patient], rtol=1e-12)
    good = len(patients) - len(bad)
    assert rows >= good
    assert calls < good / 2  # far fewer predict calls than requests: they were batched


def test_hot_swap_under_load_loses_no_request(project: Project) -> None:
    app = create_model_app(
        f"{MODEL}@production", poll_interval=0.05, prediction_log=False, max_wait_ms=1
    )
    body = {"records": _rows(project, [3])}
    stop = threading.Event()
    seen: list[list[int]] = [[] for _ in range(4)]
    failures: list[str] = []
    with live_server(app) as url:

        def hammer(index: int) -> None:
            with httpx2.Client(base_url=url) as client:
                while not stop.is_set():
                    response = client.post("/predict", json=body)
                    if response.status_code != 200:
                        failures.append(response.text)
                    else:
                        seen[index].append(response.json()["model"]["version"])

        threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        try:
            for version in (2, 3):
                time.sleep(0.3)
                set_alias(MODEL, "production", version)
                deadline = time.monotonic() + 60
                while not any(v and v[-1] == version for v in seen):
                    assert time.monotonic() < deadline, "the alias move was not picked up"
                    time.sleep(0.02)
            time.sleep(0.3)
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
        assert _metric(url, "mloop_serving_model_swaps_total", role="primary") == 2
        assert _metric(url, "mloop_serving_model_info", role="primary", version="3") == 1
        ready = httpx2.get(f"{url}/health/ready").json()
    assert failures == []
    assert ready["version"] == 3
    for versions in seen:  # each client saw 1, then 2, then 3: never back
        assert versions == sorted(versions)
    everything = [v for versions in seen for v in versions]
    assert {1, 2, 3} <= set(everything)
    assert len(everything) > 20


def test_canary_share_and_shadow_logged_never_returned(project: Project, tmp_path: Path) -> None:
    folder = tmp_path / "predictions"
    app = create_model_app(
        f"{MODEL}@production",
        canary=f"{MODEL}@challenger:30%",
        shadow=f"{MODEL}/3",
        poll_interval=None,
        prediction_log=folder,
    )
    with live_server(app) as url, httpx2.Client(base_url=url) as client:
        answers = [client.post("/predict", json={"patient_id": p}).json() for p in range(150)]
        versions = {a["served_by"]: a["model"]["version"] for a in answers}
    assert versions == {"primary": 1, "canary": 2}
    canary = sum(a["served_by"] == "canary" for a in answers)
    assert 15 < canary < 90  # 30% of 150 is 45; this is > 4 standard deviations either side
    assert all(a["model"]["version"] != 3 for a in answers)  # the shadow never answers

    logged = read_predictions(MODEL, folder=folder)
    assert len(logged) == 300  # every request once as served, once as shadow
    shadow = logged[logged["shadow"]]
    assert set(shadow["version"]) == {3}
    assert len(shadow) == 150
    served = logged[~logged["shadow"]].set_index("prediction_id")
    returned = {i: a for a in answers for i in a["prediction_ids"]}
    assert set(served.index) == set(returned)
    for prediction_id, row in served.iterrows():
        answer = returned[str(prediction_id)]
        assert row["version"] == answer["model"]["version"]
        assert row["served_by"] == answer["served_by"]
        assert row["outputs"]["prediction"] == answer["predictions"][0]
        assert set(row["inputs"]) == {"patient_id", *FEATURES}  # looked-up features logged
    assert set(shadow["served_by"]) == {"primary", "canary"}


class _SlowSink:
    """A prediction sink that blocks in append until released (a stalled disk)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.records: list[Any] = []
        self.closed = False

    def append(self, records: Any) -> int:
        self.release.wait(60)
        if not self.release.is_set():
            raise RuntimeError("never released")
        self.records += records
        return len(records)

    def close(self) -> None:
        self.closed = True


def test_background_logging_never_makes_requests_wait_on_the_log(project: Project) -> None:
    sink = _SlowSink()
    app = create_model_app(
        f"{MODEL}@production", poll_interval=None, prediction_log=sink, log_write_ahead=False
    )
    with live_server(app) as url, httpx2.Client(base_url=url, timeout=10) as client:
        # The sink stalls every append for 60 s; a request that waited on it would time out.
        answers = [client.post("/predict", json={"patient_id": p}) for p in range(20)]
        assert all(a.status_code == 200 for a in answers)
        assert sink.records == []
        sink.release.set()
    ids = [i for a in answers for i in a.json()["prediction_ids"]]
    assert [r["prediction_id"] for r in sink.records] == ids  # nothing lost, in order
    assert sink.closed
    assert all(r["inputs"]["patient_id"] == n for n, r in enumerate(sink.records))

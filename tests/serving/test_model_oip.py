"""The Open Inference Protocol v2, spoken by the real tritonclient against a real uvicorn."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton
from fastapi.testclient import TestClient
from tritonclient.utils import InferenceServerException

from mloop.registry import load_model
from mloop.serving import create_model_app

from ._live import live_server
from .conftest import FEATURES, MODEL, Project


@pytest.fixture
def client(project: Project) -> Iterator[triton.InferenceServerClient]:
    app = create_model_app(f"{MODEL}@production", poll_interval=None, prediction_log=False)
    with live_server(app) as url:
        client = triton.InferenceServerClient(url.removeprefix("http://"))
        yield client
        client.close()


def _x(project: Project, patients: list[int]) -> np.ndarray[Any, Any]:
    frame = project.frame.set_index("patient_id")
    return frame.loc[patients, FEATURES].to_numpy(dtype=np.float64)


def test_health_and_metadata_from_the_signature(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(MODEL)
    assert not client.is_model_ready("other")
    assert client.get_server_metadata()["name"] == "mloop"
    meta = client.get_model_metadata(MODEL)
    assert meta["versions"] == ["1"]
    assert [i["name"] for i in meta["inputs"]] == FEATURES
    assert {i["datatype"] for i in meta["inputs"]} == {"FP64"}
    assert [o["name"] for o in meta["outputs"]] == ["predict", "predict_proba"]
    assert client.get_model_metadata(MODEL, "1")["name"] == MODEL
    with pytest.raises(InferenceServerException, match="version '7' is not served"):
        client.get_model_metadata(MODEL, "7")


@pytest.mark.parametrize("binary", [False, True])
def test_infer_one_2d_input_in_signature_order(
    project: Project, client: triton.InferenceServerClient, binary: bool
) -> None:
    x = _x(project, [0, 1, 2, 3, 50])
    tensor = triton.InferInput("input-0", list(x.shape), "FP64")
    tensor.set_data_from_numpy(x, binary_data=binary)
    result = client.infer(MODEL, [tensor])
    model = load_model(f"{MODEL}/1")
    expected = model.predict(dict(zip(FEATURES, x.T.tolist(), strict=True)))
    assert result.as_numpy("predict").tolist() == expected.tolist()
    proba = result.as_numpy("predict_proba")
    assert proba.shape == (5, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    ids = result.get_response()["parameters"]["prediction_ids"].split(",")
    assert len(ids) == 5


@pytest.mark.parametrize("binary", [False, True])
def test_infer_one_1d_input_per_column(
    project: Project, client: triton.InferenceServerClient, binary: bool
) -> None:
    x = _x(project, [7, 8, 9])
    tensors = []
    for position, name in enumerate(FEATURES):
        tensor = triton.InferInput(name, [3], "FP64")
        tensor.set_data_from_numpy(x[:, position].copy(), binary_data=binary)
        tensors.append(tensor)
    wanted = [triton.InferRequestedOutput("predict_proba", binary_data=False)]
    result = client.infer(MODEL, tensors, outputs=wanted, request_id="r-1")
    assert result.as_numpy("predict") is None  # only what was asked for
    model = load_model(f"{MODEL}/1")
    np.testing.assert_allclose(
        result.as_numpy("predict_proba"),
        model.predict_proba(dict(zip(FEATURES, x.T.tolist(), strict=True))),
    )
    assert result.get_response()["id"] == "r-1"


def test_infer_refusals_name_the_problem(
    project: Project, client: triton.InferenceServerClient
) -> None:
    x = _x(project, [1, 2])
    narrow = triton.InferInput("input-0", [2, 3], "FP64")
    narrow.set_data_from_numpy(x[:, :3].copy(), binary_data=False)
    with pytest.raises(InferenceServerException, match="has 3 columns; model cancer takes 4"):
        client.infer(MODEL, [narrow])
    with pytest.raises(InferenceServerException, match="no model 'other'"):
        client.infer("other", [narrow])
    only_one = triton.InferInput("mean_radius", [2], "FP64")
    only_one.set_data_from_numpy(x[:, 0].copy())
    with pytest.raises(InferenceServerException, match="missing column"):
        client.infer(MODEL, [only_one])
    text = triton.InferInput("mean_radius", [1], "BYTES")
    text.set_data_from_numpy(np.array([b"big"], dtype=np.object_))
    others = []
    for name in FEATURES[1:]:
        tensor = triton.InferInput(name, [1], "FP64")
        tensor.set_data_from_numpy(np.array([1.0]))
        others.append(tensor)
    with pytest.raises(InferenceServerException, match="mean_radius"):
        client.infer(MODEL, [text, *others])


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"inputs": []}, "non-empty"),
        ({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64"}]}, "data"),
        ({"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP64", "data": [1]}]}, "8 values"),
        ({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP99", "data": [1]}]}, "FP99"),
        ({"inputs": [{"name": "x", "shape": [-1], "datatype": "FP64", "data": [1]}]}, "shape"),
        (
            {"inputs": [{"name": "x", "shape": [10**9, 10**9], "datatype": "FP64", "data": []}]},
            "limit",
        ),
        ({"inputs": "x"}, "non-empty"),
    ],
)
def test_hand_written_bad_infer_bodies(project: Project, body: Any, words: str) -> None:
    app = create_model_app(f"{MODEL}@production", poll_interval=None, prediction_log=False)
    with TestClient(app) as client:
        response = client.post(f"/v2/models/{MODEL}/infer", json=body)
        assert 400 <= response.status_code < 500, response.text
        assert words in response.json()["detail"]
        lying = client.post(
            f"/v2/models/{MODEL}/infer",
            content=b'{"inputs": []}',
            headers={"Inference-Header-Content-Length": "999"},
        )
        assert lying.status_code == 400

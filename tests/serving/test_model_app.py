"""The model server in-process: every body shape, entity keys, ids, errors, metrics, health."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from mloop.errors import InvalidValueError, NotFoundError
from mloop.registry import load_model
from mloop.serving import create_model_app

from .conftest import FEATURES, MODEL, Project


@pytest.fixture
def client(project: Project) -> Iterator[TestClient]:
    app = create_model_app(f"{MODEL}@production", poll_interval=None, prediction_log=False)
    with TestClient(app) as test_client:
        yield test_client


def _rows(project: Project, patients: list[int]) -> list[dict[str, Any]]:
    frame = project.frame.set_index("patient_id")
    return [{f: float(frame.loc[p, f]) for f in FEATURES} for p in patients]


def _expected(rows: list[dict[str, Any]]) -> tuple[list[int], np.ndarray[Any, Any]]:
    model = load_model(f"{MODEL}/1")
    return model.predict(rows).tolist(), model.predict_proba(rows)


def test_records_columns_split_and_bare_list_agree(project: Project, client: TestClient) -> None:
    rows = _rows(project, [0, 1, 2, 19])
    predictions, proba = _expected(rows)
    bodies = [
        {"records": rows},
        rows,
        {"columns": {f: [r[f] for r in rows] for f in FEATURES}},
        {
            "dataframe_split": {
                "columns": FEATURES,
                "data": [[r[f] for f in FEATURES] for r in rows],
            }
        },
        {"dataframe_records": rows},
        {"inputs": {f: [r[f] for r in rows] for f in FEATURES}},
    ]
    for body in bodies:
        response = client.post("/predict", json=body)
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["predictions"] == predictions
        np.testing.assert_allclose(result["probabilities"], proba, rtol=1e-12)
        assert result["model"] == {"name": MODEL, "version": 1}
        assert result["served_by"] == "primary"
        assert len(result["prediction_ids"]) == 4


def test_prediction_ids_are_unique_uuid7_in_time_order(
    project: Project, client: TestClient
) -> None:
    ids: list[str] = []
    for patient in range(5):
        response = client.post("/predict", json={"records": _rows(project, [patient, patient])})
        ids += response.json()["prediction_ids"]
    assert len(set(ids)) == len(ids) == 10
    assert all(uuid.UUID(i).version == 7 for i in ids)
    assert ids == sorted(ids)


def test_entity_key_request_looks_features_up_from_the_training_lineage(
    project: Project, client: TestClient
) -> None:
    patients = [5, 77, 300]
    direct = client.post("/predict", json={"records": _rows(project, patients)}).json()
    one = client.post("/predict", json={"patient_id": 77}).json()
    many = client.post("/predict", json={"records": [{"patient_id": p} for p in patients]}).json()
    assert many["predictions"] == direct["predictions"]
    assert many["probabilities"] == direct["probabilities"]
    assert one["probabilities"] == [direct["probabilities"][1]]
    # The OpenAPI schema offers entity keys, named from the lineage, not from a list here.
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    entity = [o for o in body["schema"]["oneOf"] if o["title"].startswith("entity")]
    assert entity[0]["required"] == ["patient_id"]


def test_unknown_entity_is_a_404_naming_the_key(client: TestClient) -> None:
    response = client.post("/predict", json={"records": [{"patient_id": 1}, {"patient_id": 9999}]})
    assert response.status_code == 404
    assert "patient_id=9999" in response.json()["detail"]
    for hostile in (2**70, -1, "1", "x" * 10_000, "'; DROP TABLE x; --", 0.5, True, None, {}):
        answer = client.post("/predict", json={"patient_id": hostile})
        assert answer.status_code in (404, 422), (hostile, answer.text)
        assert "patient_id" in answer.json()["detail"]
    bad = client.post("/predict", json={"patient_id": [1, 2]})
    assert bad.status_code == 422
    assert "patient_id" in bad.json()["detail"]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"records": [{"mean_radius": 1.0}]}, 422, "mean_texture"),
        ({"records": [dict.fromkeys(FEATURES, 1.0) | {"mean_radius": "big"}]}, 422, "mean_radius"),
        ({"records": [dict.fromkeys(FEATURES, 1.0) | {"mean_radius": None}]}, 422, "mean_radius"),
        ({"records": [dict.fromkeys(FEATURES, 1.0) | {"age": 3}]}, 422, "age"),
        ({"records": [dict.fromkeys(FEATURES, 1.0) | {"mean_radius": [1]}]}, 422, "mean_radius"),
        ({"records": [dict.fromkeys(FEATURES, 1.0) | {"mean_radius": True}]}, 422, "mean_radius"),
        ({"records": []}, 422, "no rows"),
        ({"records": [{}]}, 422, "no columns"),
        ([{}], 422, "no columns"),
        ({"columns": {}}, 422, "non-empty"),
        ({"records": "x"}, 422, "records"),
        ({"records": [1, 2]}, 422, "records[0]"),
        ({"columns": {"mean_radius": [1.0], "mean_texture": [1.0, 2.0]}}, 422, "same number"),
        ({"records": [{}], "columns": {}}, 422, "both"),
        ({"records": [{}], "extra": 1}, 422, "extra"),
        ({"dataframe_split": {"columns": FEATURES, "data": [[1.0]]}}, 422, "4 values"),
        ("hello", 422, "string"),
        (None, 422, "null"),
        ({}, 422, "empty"),
        ({"records": [{"mean_radius": 10**400 if False else 1e308 * 10}]}, 400, "JSON"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_problem(
    client: TestClient, body: Any, status: int, words: str
) -> None:
    raw = json.dumps(body).encode()  # Infinity for the last case: not JSON a client may send
    if b"Infinity" in raw:
        raw = b'{"records": [{"mean_radius": 1e999x}]}'
    response = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]


def test_malformed_empty_huge_and_deep_bodies(project: Project) -> None:
    app = create_model_app(
        f"{MODEL}@production",
        poll_interval=None,
        prediction_log=False,
        max_rows=50,
        max_body_bytes=20_000,
    )
    with TestClient(app) as client:
        assert client.post("/predict", content=b"{").status_code == 400
        assert "empty" in client.post("/predict", content=b"").json()["detail"]
        rows = [dict.fromkeys(FEATURES, 1.0)] * 51
        many = client.post("/predict", json={"records": rows})
        assert many.status_code == 413
        assert "51 rows" in many.json()["detail"]
        huge = client.post("/predict", content=b"[" + b"1," * 20_000 + b"1]")
        assert huge.status_code == 413
        assert "20000" in huge.json()["detail"]

        def chunks() -> Iterator[bytes]:  # no content-length: the limit still holds
            for _ in range(30):
                yield b" " * 1000

        streamed = client.post("/predict", content=chunks())
        assert streamed.status_code == 413
        deep = client.post("/predict", content=b"[" * 5000 + b"]" * 5000)
        assert deep.status_code in (400, 422)


def test_metrics_parse_and_count_requests_errors_batches_and_version(
    project: Project, client: TestClient
) -> None:
    client.post("/predict", json={"records": _rows(project, [1, 2, 3])})
    client.post("/predict", json={"records": "nope"})
    text = client.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in families.values()
        for s in f.samples
    }
    ok = (("method", "POST"), ("route", "/predict"), ("status", "200"))
    assert samples[("mloop_serving_requests_total", ok)] == 1
    assert samples[("mloop_serving_errors_total", (("route", "/predict"), ("status", "422")))] == 1
    assert (
        samples[("mloop_serving_batch_size_sum", (("role", "primary"),))] == 3
    )  # the warm-up is not counted
    scored = (
        "mloop_serving_predictions_total",
        (("model", MODEL), ("role", "primary"), ("version", "1")),
    )
    assert samples[scored] == 3
    info = ("mloop_serving_model_info", (("model", MODEL), ("role", "primary"), ("version", "1")))
    assert samples[info] == 1
    assert "mloop_serving_request_duration_seconds" in families


def test_health_docs_and_openapi(client: TestClient) -> None:
    assert client.get("/health/live").json() == {"status": "live"}
    assert client.get("/health/ready").json() == {"status": "ready", "model": MODEL, "version": 1}
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/predict", "/metrics", "/v2/models/{name}/infer", "/health/ready"} <= set(paths)
    assert client.get("/nowhere").status_code == 404


def test_serving_a_fixed_version_and_a_package_folder(project: Project, tmp_path: Any) -> None:
    from mloop.registry import get_version, save_model

    model = load_model(f"{MODEL}/3")
    folder = tmp_path / "pkg"
    save_model(model.native, folder, input_example=model.input_example())
    rows = _rows(project, [4])
    run_ref = f"runs:/{get_version(f'{MODEL}/3').run_id}/model"
    names = {f"{MODEL}/3": (MODEL, 3), str(folder): ("pkg", None), run_ref: (None, None)}
    for ref, (name, version) in names.items():
        with TestClient(create_model_app(ref, prediction_log=False)) as client:
            result = client.post("/predict", json=rows).json()
            assert result["predictions"] == model.predict(rows).tolist()
            np.testing.assert_allclose(result["probabilities"], model.predict_proba(rows))
            assert result["model"]["version"] == version
            assert name is None or result["model"]["name"] == name


def test_bad_arguments_and_unknown_models_fail_before_serving(project: Project) -> None:
    with pytest.raises(NotFoundError, match="nosuch"):
        create_model_app("nosuch@production", prediction_log=False)
    with pytest.raises(InvalidValueError, match="canary"):
        create_model_app(f"{MODEL}@production", canary=f"{MODEL}@challenger", prediction_log=False)
    with pytest.raises(InvalidValueError, match="share"):
        create_model_app(
            f"{MODEL}@production", canary=f"{MODEL}@challenger:0%", prediction_log=False
        )
    for bad in ({"max_batch": 0}, {"max_wait_ms": -1}, {"poll_interval": 0}, {"max_rows": "9"}):
        with pytest.raises(InvalidValueError):
            create_model_app(f"{MODEL}@production", prediction_log=False, **bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError, match="prediction_log"):
        create_model_app(f"{MODEL}@production", prediction_log=42)


def test_unknown_entity_gives_nulls_when_the_signature_allows_them(project: Project) -> None:
    import pandas as pd
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from mloop.features import FeatureStore
    from mloop.registry import ColumnSpec, Signature
    from mloop.tracking import start_run

    from .conftest import DIAGNOSIS, VIEW

    entity_df = project.frame[["patient_id", "target"]].assign(event_timestamp=DIAGNOSIS)
    with FeatureStore() as features:
        training = features.get_historical_features(entity_df, [f"{VIEW}:{f}" for f in FEATURES])
    nullable = Signature(tuple(ColumnSpec(f, "float64", nullable=True) for f in FEATURES))
    with start_run(experiment="tolerant") as run:
        run.log_dataset(training, name="cancer")
        model = make_pipeline(SimpleImputer(), LogisticRegression(max_iter=2000))
        model.fit(training[FEATURES], training["target"])
        example = training[FEATURES].iloc[:3]
        run.log_model(model, name="tolerant", input_example=example, signature=nullable)
    app = create_model_app("tolerant@latest", poll_interval=None, prediction_log=False)
    with TestClient(app) as client:
        known = client.post("/predict", json={"patient_id": 3})
        unknown = client.post("/predict", json={"patient_id": 99999})
    assert known.status_code == 200
    assert unknown.status_code == 200, unknown.text  # imputed: the signature takes nulls
    means = pd.DataFrame([dict.fromkeys(FEATURES, None)])
    expected = model.predict_proba(means.astype("float64")).tolist()
    np.testing.assert_allclose(unknown.json()["probabilities"], expected)


def test_entity_keys_looked_up_in_redis(project: Project, redis_server: str) -> None:
    import redis

    from mloop.features import FeatureStore

    from .conftest import DIAGNOSIS

    url = f"{redis_server}/11"  # a database of its own; its keys are removed afterwards
    client = redis.Redis.from_url(url, socket_timeout=2)
    try:
        features = FeatureStore(online_store=url)
        features.materialize(None, DIAGNOSIS)
        app = create_model_app(
            f"{MODEL}@production",
            poll_interval=None,
            prediction_log=False,
            feature_store=features,
        )
        with TestClient(app) as test_client:
            looked_up = test_client.post("/predict", json={"patient_id": 21}).json()
            direct = test_client.post("/predict", json=_rows(project, [21])).json()
            missing = test_client.post("/predict", json={"patient_id": 5000})
        assert looked_up["probabilities"] == direct["probabilities"]
        assert missing.status_code == 404
        features.close()
    finally:
        for key in client.scan_iter("mloop:tumor:*"):
            client.delete(key)
        client.delete("mloop:layouts")
        client.close()

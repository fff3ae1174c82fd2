"""Model flavors: each saves a real model into a folder and loads one that predicts the same."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import onnx
import onnxruntime
import pandas as pd
import pytest
import torch
import xgboost
from skl2onnx import convert_sklearn, to_onnx
from skl2onnx.common.data_types import DoubleTensorType
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import SVC

from mloop.errors import InvalidValueError, MissingExtraError, NotFoundError, UntrustedModelError
from mloop.registry.flavors import (
    FLAVORS,
    Flavor,
    LoadOptions,
    Predictor,
    SavedFlavor,
    SaveOptions,
    detect_flavor,
    get_flavor,
)

from ._models import (
    ArrayState,
    Hooked,
    OnlySaves,
    ShiftedRidge,
    Threshold,
    TinyNet,
    VarArgsNet,
    WeightedSum,
)

# TorchScript is deprecated from torch 2.5 on and warns at every script/trace/load call; the
# torchscript serializer uses it knowingly (the state_dict serializer does not).
torchscript_deprecated = pytest.mark.filterwarnings(
    r"ignore:`torch\.jit\.\w+` is deprecated:DeprecationWarning"
)


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, np.ndarray]:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X.iloc[:, :8], y.to_numpy()


@pytest.fixture(scope="module")
def diabetes() -> tuple[pd.DataFrame, np.ndarray]:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X, y.to_numpy()


def roundtrip(
    flavor: Flavor,
    model: Any,
    folder: Path,
    save: SaveOptions | None = None,
    load: LoadOptions | None = None,
) -> tuple[SavedFlavor, Predictor]:
    """Save into an empty folder and load back, passing ``data`` through JSON as a manifest."""
    folder.mkdir()
    saved = flavor.save(model, folder, save or SaveOptions())
    data = json.loads(json.dumps(saved.data, allow_nan=False))
    predictor = flavor.load(folder, data, load or LoadOptions())
    assert isinstance(predictor, Predictor)
    return saved, predictor


# --- the catalogue ---------------------------------------------------------------------------


def test_flavors_are_in_detection_order() -> None:
    assert list(FLAVORS) == ["xgboost", "lightgbm", "sklearn", "onnx", "pytorch", "pyfunc"]
    assert all(flavor.name == name for name, flavor in FLAVORS.items())
    assert get_flavor("onnx") is FLAVORS["onnx"]


def test_unknown_flavor_lists_the_known_ones() -> None:
    with pytest.raises(InvalidValueError, match=r"no model flavor 'keras'.*sklearn, onnx"):
        get_flavor("keras")


def test_detect_flavor_picks_each_kind(
    cancer: tuple[pd.DataFrame, np.ndarray], diabetes: tuple[pd.DataFrame, np.ndarray]
) -> None:
    X, y = cancer
    Xd, yd = diabetes
    logistic = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    cases = [
        (LogisticRegression(), "sklearn"),
        (logistic, "sklearn"),
        (ShiftedRidge(), "sklearn"),
        (xgboost.XGBClassifier(), "xgboost"),
        (xgboost.train({}, xgboost.DMatrix(Xd, label=yd), 1), "xgboost"),
        (lightgbm.LGBMRegressor(), "lightgbm"),
        (lightgbm.train({"verbose": -1}, lightgbm.Dataset(Xd, label=yd), 1), "lightgbm"),
        (to_onnx(logistic, X[:1].to_numpy(np.float32)), "onnx"),
        (TinyNet(3), "pytorch"),
        (torch.nn.Linear(2, 1), "pytorch"),
        (WeightedSum({"a": 1.0}, 0.0), "pyfunc"),
    ]
    for model, name in cases:
        assert detect_flavor(model).name == name, type(model)


def test_detect_flavor_explains_what_would_work() -> None:
    with pytest.raises(
        InvalidValueError, match=r"no model flavor saves a object.*predict\(frame\)"
    ):
        detect_flavor(object())
    with pytest.raises(InvalidValueError, match="WeightedSum is a class; pass a fitted instance"):
        detect_flavor(WeightedSum)
    # A scikit-learn transformer does not predict, so no flavor takes it.
    with pytest.raises(InvalidValueError, match="StandardScaler"):
        detect_flavor(StandardScaler())


def test_importing_the_flavors_imports_no_model_library() -> None:
    heavy = ("sklearn", "skops", "joblib", "xgboost", "lightgbm", "onnx", "onnxruntime", "torch")
    code = (
        "import sys\n"
        "from mloop.registry.flavors import detect_flavor\n"
        "class Model:\n"
        "    def predict(self, frame): return frame\n"
        "assert detect_flavor(Model()).name == 'pyfunc'\n"
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


@pytest.mark.parametrize(
    ("flavor", "module", "extra", "make"),
    [
        ("xgboost", "xgboost", "xgboost", lambda: xgboost.XGBRegressor()),
        ("lightgbm", "lightgbm", "lightgbm", lambda: lightgbm.LGBMRegressor()),
        ("onnx", "onnx", "onnx", lambda: b""),
        ("pytorch", "torch", "torch", lambda: torch.nn.Linear(1, 1)),
    ],
)
def test_a_missing_library_names_the_extra_to_install(
    flavor: str, module: str, extra: str, make: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = make()
    monkeypatch.setitem(sys.modules, module, None)  # makes `import <module>` raise ImportError
    with pytest.raises(MissingExtraError, match=rf"pip install 'mloop\[{extra}\]'") as caught:
        get_flavor(flavor).save(model, tmp_path, SaveOptions())
    assert caught.value.extra == extra


def test_loading_onnx_without_onnxruntime_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingExtraError, match=r"'onnxruntime' package.*mloop\[onnx\]"):
        get_flavor("onnx").load(tmp_path, {"classes": None}, LoadOptions())


# --- scikit-learn ----------------------------------------------------------------------------


def test_sklearn_classifier_fitted_on_a_frame(
    cancer: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    X, y = cancer
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    saved, loaded = roundtrip(get_flavor("sklearn"), model, tmp_path / "pkg")
    assert saved.data["serializer"] == "skops"
    assert saved.data["untrusted_types"] == []
    assert {"scikit-learn", "numpy", "skops"} <= set(saved.requirements)
    assert (tmp_path / "pkg" / "model.skops").is_file()
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))  # type: ignore[attr-defined]
    assert loaded.classes == [0, 1]
    assert all(type(c) is int for c in loaded.classes)


def test_sklearn_regressor_fitted_on_an_array_gets_an_array(
    diabetes: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    X, y = diabetes
    model = Ridge().fit(X.to_numpy(), y)  # a frame would now warn "X has feature names"
    _, loaded = roundtrip(get_flavor("sklearn"), model, tmp_path / "pkg")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X.to_numpy()))
    assert not hasattr(loaded, "predict_proba")
    assert loaded.classes is None


def test_sklearn_classifier_without_probabilities(
    cancer: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    X, y = cancer
    model = make_pipeline(StandardScaler(), SVC()).fit(X, np.where(y == 1, "benign", "malignant"))
    _, loaded = roundtrip(get_flavor("sklearn"), model, tmp_path / "pkg")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert not hasattr(loaded, "predict_proba")
    assert loaded.classes == ["benign", "malignant"]


def test_sklearn_trees_need_explicit_trust(
    cancer: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    # skops does not trust tree node arrays: a forged file could make predict() read out of
    # bounds. mloop follows it; whoever loads a forest names the type.
    X, y = cancer
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    flavor = get_flavor("sklearn")
    (tmp_path / "pkg").mkdir()
    saved = flavor.save(model, tmp_path / "pkg", SaveOptions())
    assert saved.data["untrusted_types"] == ["sklearn.tree._tree.Tree"]
    with pytest.raises(UntrustedModelError, match=r"sklearn\.tree\._tree\.Tree.*out of"):
        flavor.load(tmp_path / "pkg", saved.data, LoadOptions())
    loaded = flavor.load(
        tmp_path / "pkg", saved.data, LoadOptions(trusted_types=("sklearn.tree._tree.Tree",))
    )
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))  # type: ignore[attr-defined]


def test_sklearn_untrusted_type_is_refused_until_trusted(
    diabetes: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    X, y = diabetes
    model = ShiftedRidge().fit(X, y)
    flavor = get_flavor("sklearn")
    folder = tmp_path / "pkg"
    folder.mkdir()
    saved = flavor.save(model, folder, SaveOptions())
    name = f"{ShiftedRidge.__module__}.ShiftedRidge"
    assert saved.data["untrusted_types"] == [name]
    with pytest.raises(
        UntrustedModelError, match=rf"not trusted: {name}.*trusted_types=\['{name}'\]"
    ):
        flavor.load(folder, saved.data, LoadOptions())
    loaded = flavor.load(folder, saved.data, LoadOptions(trusted_types=(name,)))
    assert type(loaded.native) is ShiftedRidge
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_sklearn_refuses_a_lambda_it_could_not_load_back(tmp_path: Path) -> None:
    X = np.arange(20.0).reshape(10, 2)
    model = make_pipeline(FunctionTransformer(lambda x: x + 1), Ridge()).fit(X, np.arange(10.0))
    with pytest.raises(InvalidValueError, match=r"'.*<lambda>'.*top level of a module"):
        get_flavor("sklearn").save(model, tmp_path, SaveOptions())


def test_sklearn_joblib_needs_allow_pickle(
    cancer: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    X, y = cancer
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    flavor = get_flavor("sklearn")
    saved = flavor.save(model, tmp_path, SaveOptions(serializer="joblib"))
    assert saved.data["serializer"] == "joblib"
    assert "joblib" in saved.requirements
    with pytest.raises(UntrustedModelError, match=r"pickle.*allow_pickle=True"):
        flavor.load(tmp_path, saved.data, LoadOptions())
    loaded = flavor.load(tmp_path, saved.data, LoadOptions(allow_pickle=True))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))  # type: ignore[attr-defined]


def test_sklearn_refuses_unfitted_models_and_unknown_serializers(tmp_path: Path) -> None:
    flavor = get_flavor("sklearn")
    with pytest.raises(InvalidValueError, match="LogisticRegression is not fitted"):
        flavor.save(LogisticRegression(), tmp_path, SaveOptions())
    with pytest.raises(InvalidValueError, match=r"no serializer 'pickle'.*'skops'"):
        flavor.save(LogisticRegression(), tmp_path, SaveOptions(serializer="pickle"))
    with pytest.raises(InvalidValueError, match=r"serializer 'cloudpickle'.*upgrade mloop"):
        flavor.load(tmp_path, {"serializer": "cloudpickle"}, LoadOptions())


# --- XGBoost ---------------------------------------------------------------------------------


def test_xgboost_classifier(cancer: tuple[pd.DataFrame, np.ndarray], tmp_path: Path) -> None:
    X, y = cancer
    model = xgboost.XGBClassifier(n_estimators=10, max_depth=3).fit(X, y)
    saved, loaded = roundtrip(get_flavor("xgboost"), model, tmp_path / "pkg")
    assert saved.data == {"class": "xgboost.sklearn:XGBClassifier"}
    assert (tmp_path / "pkg" / "model.ubj").is_file()
    assert "xgboost-cpu" in saved.requirements or "xgboost" in saved.requirements
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))  # type: ignore[attr-defined]
    assert loaded.classes == [0, 1]


def test_xgboost_regressor_and_booster(
    diabetes: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    X, y = diabetes
    regressor = xgboost.XGBRegressor(n_estimators=10).fit(X.to_numpy(), y)
    _, loaded = roundtrip(get_flavor("xgboost"), regressor, tmp_path / "regressor")
    np.testing.assert_array_equal(loaded.predict(X), regressor.predict(X.to_numpy()))
    assert not hasattr(loaded, "predict_proba")
    assert loaded.classes is None

    booster = xgboost.train({"max_depth": 3}, xgboost.DMatrix(X, label=y), num_boost_round=10)
    saved, loaded = roundtrip(get_flavor("xgboost"), booster, tmp_path / "booster")
    assert saved.data == {"class": "xgboost.core:Booster"}
    np.testing.assert_array_equal(loaded.predict(X), booster.predict(xgboost.DMatrix(X)))
    assert not hasattr(loaded, "predict_proba")


def test_xgboost_loads_only_xgboost_classes(tmp_path: Path) -> None:
    for path in ("os:system", "tests.evil:XGBClassifier", "xgboost.core:DMatrix"):
        with pytest.raises(UntrustedModelError, match=r"not (part of the xgboost|an XGBoost)"):
            get_flavor("xgboost").load(tmp_path, {"class": path}, LoadOptions())


def test_xgboost_refuses_an_unfitted_model(tmp_path: Path) -> None:
    with pytest.raises(InvalidValueError, match="fit it before saving"):
        get_flavor("xgboost").save(xgboost.XGBClassifier(), tmp_path, SaveOptions())


# --- LightGBM --------------------------------------------------------------------------------


def test_lightgbm_binary_classifier(
    cancer: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    X, y = cancer
    model = lightgbm.LGBMClassifier(n_estimators=10, verbose=-1).fit(X, y)
    saved, loaded = roundtrip(get_flavor("lightgbm"), model, tmp_path / "pkg")
    assert saved.data == {"kind": "classifier", "objective": "binary", "classes": [0, 1]}
    assert (tmp_path / "pkg" / "model.txt").is_file()
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    proba = loaded.predict_proba(X)  # type: ignore[attr-defined]
    np.testing.assert_allclose(proba, model.predict_proba(X), rtol=0, atol=1e-6)
    assert loaded.classes == [0, 1]


def test_lightgbm_multiclass_with_string_labels(tmp_path: Path) -> None:
    X, y = load_iris(return_X_y=True, as_frame=True)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    model = lightgbm.LGBMClassifier(n_estimators=10, verbose=-1).fit(X.to_numpy(), labels)
    saved, loaded = roundtrip(get_flavor("lightgbm"), model, tmp_path / "pkg")
    assert saved.data["objective"] == "multiclass"
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X.to_numpy()))
    proba = loaded.predict_proba(X)  # type: ignore[attr-defined]
    np.testing.assert_allclose(proba, model.predict_proba(X.to_numpy()), rtol=0, atol=1e-6)
    assert loaded.classes == ["setosa", "versicolor", "virginica"]


def test_lightgbm_regressor_and_booster(
    diabetes: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    X, y = diabetes
    regressor = lightgbm.LGBMRegressor(n_estimators=10, verbose=-1).fit(X, y)
    saved, loaded = roundtrip(get_flavor("lightgbm"), regressor, tmp_path / "regressor")
    assert saved.data == {"kind": "regressor", "objective": "regression", "classes": None}
    np.testing.assert_allclose(loaded.predict(X), regressor.predict(X), rtol=1e-6, atol=1e-6)
    assert not hasattr(loaded, "predict_proba")
    assert loaded.classes is None

    booster = lightgbm.train(
        {"objective": "regression", "verbose": -1}, lightgbm.Dataset(X, label=y), 10
    )
    saved, loaded = roundtrip(get_flavor("lightgbm"), booster, tmp_path / "booster")
    assert saved.data["kind"] == "booster"
    np.testing.assert_allclose(loaded.predict(X), booster.predict(X), rtol=1e-6, atol=1e-6)


def test_lightgbm_refuses_an_unfitted_model(tmp_path: Path) -> None:
    with pytest.raises(InvalidValueError, match="LGBMClassifier is not fitted"):
        get_flavor("lightgbm").save(lightgbm.LGBMClassifier(), tmp_path, SaveOptions())


# --- ONNX ------------------------------------------------------------------------------------


def run_onnx(model: onnx.ModelProto, feed: dict[str, np.ndarray]) -> list[Any]:
    """What ONNX Runtime itself computes for ``model``: the reference for the flavor."""
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return list(session.run(None, feed))


def test_onnx_classifier_with_probability_tensor(
    cancer: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    X, y = cancer
    logistic = make_pipeline(StandardScaler(), LogisticRegression()).fit(X.to_numpy(), y)
    model = to_onnx(logistic, X[:1].to_numpy(np.float32), options={"zipmap": False})
    saved, loaded = roundtrip(get_flavor("onnx"), model, tmp_path / "pkg")
    assert saved.data["inputs"] == [{"name": "X", "type": "float", "shape": [None, 8]}]
    assert saved.data["outputs"] == ["label", "probabilities"]
    assert saved.data["classes"] == [0, 1]
    assert {"onnx", "onnxruntime"} <= set(saved.requirements)
    label, probabilities = run_onnx(model, {"X": X.to_numpy(np.float32)})
    np.testing.assert_array_equal(loaded.predict(X), label)
    np.testing.assert_array_equal(loaded.predict_proba(X), probabilities)  # type: ignore[attr-defined]
    expected = logistic.predict_proba(X.to_numpy())
    np.testing.assert_allclose(loaded.predict_proba(X), expected, atol=1e-5)  # type: ignore[attr-defined]
    assert loaded.classes == [0, 1]


def test_onnx_classifier_with_zipmap(
    cancer: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    X, y = cancer
    labels = np.where(y == 1, "benign", "malignant")
    logistic = make_pipeline(StandardScaler(), LogisticRegression()).fit(X.to_numpy(), labels)
    model = to_onnx(logistic, X[:1].to_numpy(np.float32))  # ZipMap: a list of dicts
    _, loaded = roundtrip(get_flavor("onnx"), model, tmp_path / "pkg")
    assert loaded.classes == ["benign", "malignant"]
    label, rows = run_onnx(model, {"X": X.to_numpy(np.float32)})
    np.testing.assert_array_equal(loaded.predict(X), label)
    expected = [[row["benign"], row["malignant"]] for row in rows]
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)  # type: ignore[attr-defined]
    assert loaded.predict_proba(X.iloc[:0]).shape == (0, 2)  # type: ignore[attr-defined]


def test_onnx_regressor_from_bytes(
    diabetes: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    X, y = diabetes
    forest = RandomForestRegressor(n_estimators=5, random_state=0).fit(X.to_numpy(), y)
    model = to_onnx(forest, X[:1].to_numpy(np.float32))
    _, loaded = roundtrip(get_flavor("onnx"), model.SerializeToString(), tmp_path / "pkg")
    (expected,) = run_onnx(model, {"X": X.to_numpy(np.float32)})
    assert expected.shape == (len(X), 1)
    np.testing.assert_array_equal(loaded.predict(X), expected[:, 0])
    np.testing.assert_allclose(loaded.predict(X), forest.predict(X.to_numpy()), rtol=1e-5)
    assert not hasattr(loaded, "predict_proba")
    assert loaded.classes is None


def test_onnx_one_input_per_column(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(40, 2)), columns=["a", "b"])
    y = X.to_numpy() @ [1.0, 2.0] + 0.5
    pipeline = make_pipeline(
        ColumnTransformer([("scale", StandardScaler(), ["a", "b"])]), LinearRegression()
    ).fit(X, y)
    types = [("a", DoubleTensorType([None, 1])), ("b", DoubleTensorType([None, 1]))]
    model = convert_sklearn(pipeline, initial_types=types)
    _, loaded = roundtrip(get_flavor("onnx"), model, tmp_path / "pkg")
    np.testing.assert_allclose(loaded.predict(X), pipeline.predict(X), rtol=1e-9)


def test_onnx_refuses_what_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(InvalidValueError, match="do not parse as one"):
        get_flavor("onnx").save(b"\xff\xff not a protobuf", tmp_path, SaveOptions())
    with pytest.raises(InvalidValueError, match=r"saves an onnx\.ModelProto or its bytes, not str"):
        get_flavor("onnx").save("model.onnx", tmp_path, SaveOptions())


# --- PyTorch ---------------------------------------------------------------------------------


@pytest.fixture
def net() -> TinyNet:
    torch.manual_seed(0)
    return TinyNet(n_inputs=4)


@pytest.fixture
def rows() -> pd.DataFrame:
    return pd.DataFrame(np.random.default_rng(0).normal(size=(16, 4)), columns=list("abcd"))


def torch_reference(module: torch.nn.Module, frame: pd.DataFrame) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(frame.to_numpy(np.float32, copy=True))).numpy()


def test_torch_export_is_the_default(net: TinyNet, rows: pd.DataFrame, tmp_path: Path) -> None:
    flavor = get_flavor("pytorch")
    with pytest.raises(InvalidValueError, match="needs an input_example"):
        flavor.save(net, tmp_path, SaveOptions())
    saved, loaded = roundtrip(flavor, net, tmp_path / "pkg", SaveOptions(input_example=rows[:1]))
    assert saved.data == {"serializer": "export"}
    assert set(saved.requirements) == {"torch", "numpy"}
    assert (tmp_path / "pkg" / "model.pt2").is_file()
    predictions = loaded.predict(rows)  # 16 rows through a program exported on one
    assert predictions.shape == (16,)
    np.testing.assert_allclose(predictions, torch_reference(net, rows)[:, 0], rtol=1e-6)
    assert loaded.predict(rows[:1]).shape == (1,)
    assert not hasattr(loaded, "predict_proba")
    assert loaded.classes is None
    assert net.training  # saving left the caller's module as it was


def test_torch_export_exports_what_torchscript_cannot_script(
    rows: pd.DataFrame, tmp_path: Path
) -> None:
    net = VarArgsNet(n_inputs=4)
    _, loaded = roundtrip(
        get_flavor("pytorch"), net, tmp_path / "pkg", SaveOptions(input_example=rows[:2])
    )
    np.testing.assert_allclose(loaded.predict(rows), torch_reference(net, rows), rtol=1e-6)


@torchscript_deprecated
def test_torch_torchscript_on_request(net: TinyNet, rows: pd.DataFrame, tmp_path: Path) -> None:
    saved, loaded = roundtrip(
        get_flavor("pytorch"), net, tmp_path / "pkg", SaveOptions(serializer="torchscript")
    )
    assert saved.data == {"serializer": "torchscript", "compiled_by": "script"}
    assert (tmp_path / "pkg" / "model.pt").is_file()
    np.testing.assert_allclose(loaded.predict(rows), torch_reference(net, rows)[:, 0], rtol=1e-6)
    assert not loaded.native.training


@torchscript_deprecated
def test_torch_traces_what_it_cannot_script(rows: pd.DataFrame, tmp_path: Path) -> None:
    net = VarArgsNet(n_inputs=4)
    flavor = get_flavor("pytorch")
    script = SaveOptions(serializer="torchscript")
    with pytest.raises(InvalidValueError, match="cannot script VarArgsNet; give an input_example"):
        flavor.save(net, tmp_path, script)
    traced = SaveOptions(serializer="torchscript", input_example=rows[:2])
    saved, loaded = roundtrip(flavor, net, tmp_path / "pkg", traced)
    assert saved.data["compiled_by"] == "trace"
    np.testing.assert_allclose(loaded.predict(rows), torch_reference(net, rows), rtol=1e-6)


def test_torch_state_dict(net: TinyNet, rows: pd.DataFrame, tmp_path: Path) -> None:
    options = SaveOptions(serializer="state_dict", extra={"init_kwargs": {"n_inputs": 4}})
    saved, loaded = roundtrip(get_flavor("pytorch"), net, tmp_path / "pkg", options)
    assert saved.data == {
        "serializer": "state_dict",
        "class": f"{TinyNet.__module__}:TinyNet",
        "init_kwargs": {"n_inputs": 4},
    }
    assert type(loaded.native) is TinyNet
    assert not loaded.native.training
    np.testing.assert_array_equal(loaded.predict(rows), torch_reference(net, rows)[:, 0])


def test_torch_state_dict_refuses_classes_it_cannot_import(tmp_path: Path) -> None:
    main_class = type("ScriptNet", (TinyNet,), {"__module__": "__main__"})

    class LocalNet(TinyNet):
        pass

    options = SaveOptions(serializer="state_dict", extra={"init_kwargs": {"n_inputs": 2}})
    flavor = get_flavor("pytorch")
    with pytest.raises(InvalidValueError, match=r"'ScriptNet' is defined in __main__.*module"):
        flavor.save(main_class(2), tmp_path, options)
    with pytest.raises(InvalidValueError, match=r"LocalNet' is defined inside a function"):
        flavor.save(LocalNet(2), tmp_path, options)
    with pytest.raises(InvalidValueError, match=r"do not fit TinyNet's constructor"):
        flavor.save(TinyNet(2), tmp_path, SaveOptions(serializer="state_dict"))


def test_torch_state_dict_loads_only_modules(tmp_path: Path) -> None:
    data = {"serializer": "state_dict", "class": f"{WeightedSum.__module__}:WeightedSum"}
    with pytest.raises(UntrustedModelError, match=r"not a torch\.nn\.Module"):
        get_flavor("pytorch").load(tmp_path, data, LoadOptions())
    data["class"] = "no_such_module_here:Net"
    with pytest.raises(NotFoundError, match="no_such_module_here"):
        get_flavor("pytorch").load(tmp_path, data, LoadOptions())


# --- pyfunc ----------------------------------------------------------------------------------


def test_pyfunc_with_json_state(tmp_path: Path) -> None:
    model = WeightedSum({"a": 2.0, "b": -1.0}, offset=0.5)
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 0.0]})
    saved, loaded = roundtrip(get_flavor("pyfunc"), model, tmp_path / "pkg")
    assert saved.data == {"class": f"{WeightedSum.__module__}:WeightedSum", "state": "json"}
    assert json.loads((tmp_path / "pkg" / "state.json").read_text()) == vars(model)
    result = loaded.predict(frame)
    assert isinstance(result, np.ndarray)
    np.testing.assert_array_equal(result, [-0.5, 4.5])
    assert not hasattr(loaded, "predict_proba")
    assert loaded.classes is None


def test_pyfunc_with_predict_proba_and_classes(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [0.1, 0.9]})
    _, loaded = roundtrip(get_flavor("pyfunc"), Threshold("x", 0.5), tmp_path / "pkg")
    np.testing.assert_array_equal(loaded.predict(frame), ["no", "yes"])
    np.testing.assert_array_equal(loaded.predict_proba(frame), [[1, 0], [0, 1]])  # type: ignore[attr-defined]
    assert loaded.classes == ["no", "yes"]


def test_pyfunc_with_hooks(tmp_path: Path) -> None:
    model = Hooked(np.array([1.0, -2.0]))
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 0.5]})
    saved, loaded = roundtrip(get_flavor("pyfunc"), model, tmp_path / "pkg")
    assert saved.data["state"] == "hooks"
    assert sorted(p.name for p in (tmp_path / "pkg").iterdir()) == ["coef.npy", "meta.json"]
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))


def test_pyfunc_refuses_state_that_is_not_json(tmp_path: Path) -> None:
    flavor = get_flavor("pyfunc")
    tmp_path = tmp_path / "pkg"
    tmp_path.mkdir()
    with pytest.raises(InvalidValueError, match=r"attribute 'coef'.*ndarray.*save_model"):
        flavor.save(ArrayState(np.zeros(2)), tmp_path, SaveOptions())
    with pytest.raises(InvalidValueError, match=r"attribute 'weights'.*comes back changed"):
        flavor.save(WeightedSum({1: 1.0}, 0.0), tmp_path, SaveOptions())  # type: ignore[dict-item]
    with pytest.raises(InvalidValueError, match=r"attribute 'offset'.*Out of range float"):
        flavor.save(WeightedSum({}, float("nan")), tmp_path, SaveOptions())
    with pytest.raises(InvalidValueError, match="defines save_model but not load_model"):
        flavor.save(OnlySaves({}, 0.0), tmp_path, SaveOptions())
    assert list(tmp_path.iterdir()) == []


def test_pyfunc_refuses_classes_it_cannot_import(tmp_path: Path) -> None:
    class Local:
        def predict(self, frame: pd.DataFrame) -> pd.Series:
            return frame.iloc[:, 0]

    script_class = type("Script", (WeightedSum,), {"__module__": "__main__"})
    flavor = get_flavor("pyfunc")
    with pytest.raises(InvalidValueError, match=r"'Script' is defined in __main__.*into a module"):
        flavor.save(script_class({}, 0.0), tmp_path, SaveOptions())
    with pytest.raises(InvalidValueError, match="defined inside a function"):
        flavor.save(Local(), tmp_path, SaveOptions())

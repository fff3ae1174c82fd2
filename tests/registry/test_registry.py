"""The registry end to end: log, register, alias, load by every kind of reference, verify."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import mloop
from mloop.artifacts import open_artifact_store
from mloop.backends import backends
from mloop.errors import (
    IntegrityError,
    InvalidKeyError,
    InvalidValueError,
    NotFoundError,
    SignatureError,
    UntrustedModelError,
)
from mloop.registry import (
    get_model,
    get_version,
    list_versions,
    load_model,
    model_card,
    register,
    render_html,
    save_model,
    set_alias,
    version_lineage,
)
from mloop.registry._package import MANIFEST
from mloop.store import Store


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.Series]:
    frame = load_breast_cancer(as_frame=True)
    return frame.data.iloc[:300], frame.target.iloc[:300]


@pytest.fixture(scope="module")
def fitted(data: tuple[pd.DataFrame, pd.Series]) -> object:
    X, y = data
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)


def _train_and_log(
    fitted: object, data: tuple[pd.DataFrame, pd.Series], store: Store | None = None, **kw: object
) -> mloop.registry.LoggedModel:
    X, y = data
    with mloop.start_run(experiment="churn", params={"C": 1.0}, store=store) as run:
        run.log_dataset(X.assign(target=y), name="cancer", role="train")
        run.log_metric("auc", 0.97)
        return run.log_model(fitted, name="cancer", input_example=X.iloc[:5], **kw)


def test_log_register_alias_and_load_by_every_reference(store: Store, fitted, data) -> None:
    X, _ = data
    logged = _train_and_log(fitted, data, store=store)
    assert logged.version is not None
    assert logged.version.version == 1
    assert logged.version.flavor == "sklearn"
    set_alias("cancer", "production", 1, store=store)
    expected = fitted.predict(X)  # type: ignore[attr-defined]
    for ref in (
        "models:/cancer@production",
        "cancer@production",
        "models:/cancer/1",
        "cancer/1",
        "models:/cancer@latest",
        "cancer",
        logged.uri,
    ):
        model = load_model(ref, store=store)
        np.testing.assert_array_equal(model.predict(X), expected, err_msg=ref)
    model = load_model("cancer@production", store=store)
    assert model.metadata.version == 1
    assert model.metadata.name == "cancer"
    assert model.metadata.run_id == logged.run_id
    assert model.metadata.aliases == ("production",)
    assert [d["name"] for d in model.metadata.datasets] == ["datasets/train/cancer"]
    assert model.signature is not None
    assert model.signature.columns == list(X.columns)
    np.testing.assert_allclose(
        model.predict_proba(X),
        fitted.predict_proba(X),  # type: ignore[attr-defined]
    )
    assert model.classes == [0, 1]
    pd.testing.assert_frame_equal(model.input_example(), X.iloc[:5].reset_index(drop=True))


def test_aliases_move_and_the_audit_log_and_events_say_so(store: Store, fitted, data) -> None:
    _train_and_log(fitted, data, store=store, alias="production")
    _train_and_log(fitted, data, store=store)
    assert get_version("cancer@production", store=store).version == 1
    change = set_alias("cancer", "production", 2, store=store, actor="alice")
    assert (change.previous_version, change.version) == (1, 2)
    assert get_model("cancer", store=store).aliases == {"production": 2}
    assert [v.version for v in list_versions("cancer", store=store)] == [2, 1]
    moves = [e for e in store.list_audit(object_id="cancer") if e.action == "set_alias"]
    assert moves[0].actor == "alice"
    assert moves[0].details["previous_version"] == 1
    kinds = [e.kind for e in store.events.list_events()]
    assert kinds.count("model_version.created") == 2
    assert kinds.count("model_alias.changed") == 2


def test_register_a_runs_package_and_a_saved_folder(tmp_path: Path, fitted, data) -> None:
    X, _ = data
    with mloop.start_run(experiment="churn") as run:
        logged = run.log_model(fitted, input_example=X.iloc[:3])
    assert logged.version is None
    version = register(logged.uri, "from-run")
    assert (version.version, version.run_id, version.digest) == (
        1,
        run.id,
        logged.artifact.digest,
    )
    folder = tmp_path / "pkg"
    save_model(fitted, folder, input_example=X.iloc[:3])
    from_folder = register(folder, "from-folder", description="saved by hand")
    assert from_folder.description == "saved by hand"
    np.testing.assert_array_equal(
        load_model("from-folder@latest").predict(X),
        load_model(folder).predict(X),
    )


def test_signature_violations_name_the_column(fitted, data) -> None:
    X, _ = data
    register(fitted, "cancer", input_example=X.iloc[:5])
    model = load_model("cancer/1")
    first = X.columns[0]
    with pytest.raises(SignatureError, match=first) as caught:
        model.predict(X.drop(columns=[first]))
    assert caught.value.column == first
    with pytest.raises(SignatureError, match="surprise"):
        model.predict(X.assign(surprise=1.0))
    relaxed = load_model("cancer/1", extra_columns="drop")
    assert len(relaxed.predict(X.assign(surprise=1.0))) == len(X)
    with pytest.raises(SignatureError, match=first):
        model.predict(X.assign(**{first: "not a number"}))
    records = X.iloc[:2].to_dict(orient="records")
    np.testing.assert_array_equal(model.predict(records), model.predict(X.iloc[:2]))


def _only_blob(root: Path, digest: str) -> Path:
    return root / "sha256" / digest[:2] / digest[2:]


def test_a_tampered_package_in_the_artifact_store_is_refused(fitted, data) -> None:
    X, _ = data
    version = register(fitted, "cancer", input_example=X.iloc[:5])
    b = backends()
    blob = _only_blob(Path(b.settings.resolved_artifact_uri()), version.digest)
    assert blob.is_file()
    blob.chmod(0o644)
    raw = bytearray(blob.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    blob.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError, match=version.digest[:12]):
        load_model("cancer/1")
    assert not (b.settings.resolved_model_cache() / version.digest).exists()


def test_a_tampered_cached_package_is_set_aside_and_fetched_again(fitted, data) -> None:
    X, _ = data
    version = register(fitted, "cancer", input_example=X.iloc[:5])
    first = load_model("cancer/1")
    cached = first.folder
    victim = next(p for p in (cached / "model").iterdir() if p.is_file())
    victim.write_bytes(victim.read_bytes() + b"evil")
    again = load_model("cancer/1")
    np.testing.assert_array_equal(again.predict(X), fitted.predict(X))  # type: ignore[attr-defined]
    leftovers = [p.name for p in cached.parent.iterdir() if p.name.startswith(".corrupt-")]
    assert len(leftovers) == 1
    assert version.digest in leftovers[0]


def test_a_forged_manifest_is_refused_even_when_files_match_it(fitted, data) -> None:
    X, _ = data
    register(fitted, "cancer", input_example=X.iloc[:5])
    cached = load_model("cancer/1").folder
    manifest = json.loads((cached / MANIFEST).read_text())
    manifest["metadata"] = {"owner": "mallory"}
    (cached / MANIFEST).write_text(json.dumps(manifest))
    # The cache self-heals from the verified blob; the forged copy is never loaded.
    model = load_model("cancer/1")
    assert model.metadata.extra == {}


def test_a_folder_that_does_not_match_its_manifest_is_refused(tmp_path: Path, fitted, data) -> None:
    X, _ = data
    folder = tmp_path / "pkg"
    save_model(fitted, folder, input_example=X.iloc[:3])
    (folder / "model" / "extra.bin").write_bytes(b"x")
    with pytest.raises(IntegrityError, match=r"extra\.bin"):
        load_model(folder)


def test_zip_packages_with_hostile_member_names_are_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../../outside.txt", "x")
        archive.writestr(MANIFEST, "{}")
    with pytest.raises((IntegrityError, InvalidValueError)):
        load_model(evil)
    assert not (tmp_path.parent / "outside.txt").exists()


def test_pickle_packages_need_an_explicit_opt_in(fitted, data) -> None:
    X, _ = data
    register(fitted, "pickled", input_example=X.iloc[:5], serializer="joblib")
    with pytest.raises(UntrustedModelError, match="allow_pickle"):
        load_model("pickled/1")
    assert len(load_model("pickled/1", allow_pickle=True).predict(X)) == len(X)
    os.environ["MLOOP_ALLOW_PICKLE_MODELS"] = "true"
    try:
        assert len(load_model("pickled/1").predict(X)) == len(X)
    finally:
        del os.environ["MLOOP_ALLOW_PICKLE_MODELS"]


@pytest.mark.parametrize(
    ("ref", "error"),
    [
        ("cancer/9", NotFoundError),
        ("cancer@staging", NotFoundError),
        ("nobody@production", NotFoundError),
        ("runs:/0000/model", NotFoundError),
        ("bad name@x", InvalidKeyError),
        ("cancer@1abc", InvalidKeyError),
        ("", InvalidValueError),
    ],
)
def test_bad_references_say_what_is_wrong(ref: str, error: type[Exception], fitted, data) -> None:
    X, _ = data
    register(fitted, "cancer", input_example=X.iloc[:5])
    with pytest.raises(error):
        load_model(ref)


def test_load_model_does_not_create_a_store(isolated_settings: Path) -> None:
    with pytest.raises(NotFoundError):
        load_model("cancer@production")
    assert not (isolated_settings / ".mloop" / "mloop.db").exists()


def test_lineage_and_model_card(fitted, data) -> None:
    logged = _train_and_log(fitted, data, alias="production")
    lineage = version_lineage("cancer@production")
    assert lineage.run is not None
    assert lineage.run.id == logged.run_id
    assert [e.name for e in lineage.inputs] == ["datasets/train/cancer"]
    card = model_card("cancer@production")
    assert "# Model card: cancer version 1" in card
    assert "| auc | 0.97 |" in card
    assert "| C | 1.0 |" in card
    assert lineage.inputs[0].artifact.digest in card
    assert "`production` → this version (new alias)" in card
    assert "mean radius" in card
    html = render_html(card, "card")
    assert "<table>" in html
    assert "<h1>Model card: cancer version 1</h1>" in html


def test_the_card_escapes_hostile_descriptions(fitted, data) -> None:
    X, _ = data
    register(
        fitted,
        "cancer",
        input_example=X.iloc[:5],
        description="<script>alert(1)</script> | broken | table",
    )
    html = render_html(model_card("cancer/1"), "card")
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_artifact_store_blobs_of_registered_packages_survive_gc(fitted, data) -> None:
    from datetime import timedelta

    from mloop.tracking import collect_garbage

    X, _ = data
    version = register(fitted, "cancer", input_example=X.iloc[:5])
    b = backends()
    collect_garbage(b.store, b.artifacts, older_than=timedelta(0))
    assert open_artifact_store(backends().artifacts.uri).exists(version.digest)
    assert len(load_model("cancer/1").predict(X)) == len(X)

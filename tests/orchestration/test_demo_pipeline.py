"""The demo's training pipeline: features → split + validation → train → evaluate → register."""

from __future__ import annotations

from mloop.backends import backends
from mloop.demo import load_data
from mloop.demo._features import build
from mloop.demo._pipeline import PIPELINE_NAME, run_training_pipeline
from mloop.registry import list_versions
from mloop.store import SqlStore


def test_the_training_pipeline_registers_once_and_is_cached_the_second_time(
    sqlite_url: str,
) -> None:
    store = SqlStore(sqlite_url)
    try:
        ctx = backends(store)
        features = build(load_data(120, seed=3), ctx, 3)

        first = run_training_pipeline(ctx, features, 3)
        assert first.status == "finished"
        assert first.executed == 6
        assert first.cache_hits == 0
        assert list(first.steps) == [
            "load_features",
            "split",
            "validate",
            "train",
            "evaluate",
            "register_model",
        ]
        assert first.metrics["test_auc"] > 0.9
        assert [v.version for v in list_versions("breast-cancer", store=store)] == [
            first.model_version
        ]

        second = run_training_pipeline(ctx, features, 3)
        assert second.cache_hits == 6
        assert second.executed == 0
        assert second.model_version == first.model_version  # no second registration
        assert len(list_versions("breast-cancer", store=store)) == 1
        assert store.get_run(second.run_id).name == PIPELINE_NAME

        third = run_training_pipeline(ctx, features, 4)  # another seed: another split
        assert third.steps["load_features"] == "cached"
        assert third.steps["split"] == "finished"
        assert third.model_version == first.model_version + 1
    finally:
        store.close()

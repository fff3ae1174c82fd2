"""The latest value of each metric, as search sees it, against a plain-Python reference."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mloop.store import MetricRow, NewRun, SqlStore

row = st.tuples(
    st.sampled_from(["loss", "auc", "a/b"]),
    st.integers(min_value=-3, max_value=3),  # step
    st.integers(min_value=0, max_value=3),  # timestamp (ms): ties are likely
    st.floats(allow_nan=False, allow_infinity=False, width=64),
)
batches = st.lists(st.lists(row, min_size=1, max_size=12), min_size=1, max_size=5)


def reference(rows: list[tuple[str, int, int, float]]) -> dict[str, float]:
    """Highest step wins, then latest time; among equals, the row logged last."""
    latest: dict[str, tuple[int, int, float]] = {}
    for key, step, ts, value in rows:
        seen = latest.get(key)
        if seen is None or (step, ts) >= seen[:2]:
            latest[key] = (step, ts, value)
    return {key: value for key, (_, _, value) in latest.items()}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=batches)
def test_latest_metrics_follow_step_then_time(
    tmp_path_factory: object, batches: list[list[tuple[str, int, int, float]]]
) -> None:
    folder: Path = tmp_path_factory.mktemp("latest")  # type: ignore[attr-defined]
    store = SqlStore(f"sqlite:///{folder / 'm.db'}")
    try:
        exp = store.get_or_create_experiment("p")
        run_id = store.create_run(NewRun(exp.id, "r", "u")).id
        everything: list[tuple[str, int, int, float]] = []
        for batch in batches:
            rows: list[MetricRow] = [(run_id, k, v, s, ts) for k, s, ts, v in batch]
            store.log_metrics(rows)
            everything.extend(batch)
        assert store.get_run(run_id).metrics == reference(everything)
        history = [
            p.value
            for key in {k for k, *_ in everything}
            for p in store.get_metric_history(run_id, key)
        ]
        assert len(history) == len(everything)
    finally:
        store.close()

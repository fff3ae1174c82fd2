"""Property tests: any DAG runs in dependency order, and a failure skips exactly what is below."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mloop.pipelines import StepResult, pipeline, step
from mloop.pipelines._values import encode_json
from mloop.store import SqlStore


@step
def node(index: int, fail: int, inputs: list[int]) -> int:
    if index == fail:
        raise RuntimeError(f"node {index} fails")
    return 1 + sum(inputs)


@pipeline
def dag(parents: list[list[int]], fail: int):
    made: list[object] = []
    for index, above in enumerate(parents):
        made.append(node(index, fail, [made[p] for p in above]))
    return made


@st.composite
def graphs(draw: st.DrawFn) -> tuple[list[list[int]], int]:
    size = draw(st.integers(min_value=1, max_value=9))
    parents = [
        sorted(draw(st.sets(st.integers(min_value=0, max_value=i - 1), max_size=3))) if i else []
        for i in range(size)
    ]
    fail = draw(st.integers(min_value=-1, max_value=size - 1))  # -1: nothing fails
    return parents, fail


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqlStore]:
    store = SqlStore(f"sqlite:///{tmp_path_factory.mktemp('props') / 'mloop.db'}")
    yield store
    store.close()


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(graphs())
def test_any_dag_runs_in_order_and_a_failure_skips_its_descendants(
    shared_store: SqlStore, case: tuple[list[list[int]], int]
) -> None:
    parents, fail = case
    order: list[tuple[str, str]] = []

    def observe(step: StepResult) -> None:
        order.append((step.key, step.state))

    result = dag.run(
        parents=parents,
        fail=fail,
        executor="inprocess",
        store=shared_store,
        cache=False,
        raise_on_error=False,
        observer=observe,
    )
    keys = ["node" if i == 0 else f"node_{i + 1}" for i in range(len(parents))]
    below: set[int] = set()
    if fail >= 0:
        for index in range(len(parents)):
            if any(p == fail or p in below for p in parents[index]):
                below.add(index)
    values: dict[int, int] = {}
    for index, key in enumerate(keys):
        state = result.steps[key].state
        if index == fail:
            assert state == "failed"
        elif index in below:
            assert state == "skipped"
        else:
            assert state == "finished"
            values[index] = 1 + sum(values[p] for p in parents[index])
            assert result.outputs[key] == values[index]
    # Every step ran only after all the steps it takes outputs from had finished.
    finished_at = {key: i for i, (key, state) in enumerate(order) if state == "finished"}
    for index, key in enumerate(keys):
        started = [i for i, (k, s) in enumerate(order) if k == key and s == "running"]
        for parent in parents[index]:
            if started:
                assert finished_at[keys[parent]] < started[0]
    assert result.status == ("failed" if fail >= 0 else "finished")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(json_values)
def test_json_outputs_are_canonical_and_round_trip(value: object) -> None:
    import json

    encoded = encode_json(value)
    assert encoded is not None
    assert json.loads(encoded) == value
    if isinstance(value, dict):  # the same mapping in another order is the same bytes
        assert encode_json(dict(reversed(list(value.items())))) == encoded


@given(st.tuples(st.integers()) | st.sets(st.integers(), min_size=1) | st.just(float("nan")))
def test_values_json_would_change_are_not_json_outputs(value: object) -> None:
    assert encode_json(value) is None

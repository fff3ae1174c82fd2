"""Random runs, random filters: the SQL answer equals a plain-Python evaluation of the filter.

The filters are generated as small trees, rendered to text, and evaluated here in Python with
SQL's three-valued logic (a missing metric/param/tag is unknown); the order is checked against
Python's sort with missing values last and run id descending as the tie-breaker.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mloop.store._filter import build_search_query
from mloop.store._schema import experiments, latest_metrics, metadata, params, runs, tags

METRIC_VALUES = [-1.0, 0.0, 0.5, 1.0, 2.5]
# Short strings over a tiny alphabet collide often: case, wildcards and quotes all matter.
TEXT_VALUES = [
    "",
    "a",
    "A",
    "b",
    "ab",
    "aB",
    "Ab",
    "a_",
    "a%",
    "%",
    "_",
    "'",
    "a'b",
    "\\",
    "10",
    "9",
]
PATTERN_PIECES = ["a", "A", "b", "%", "_", "\\%", "\\_", "\\\\", "'"]
STATUSES = ["running", "finished", "failed", "killed"]
NAMES = ["x", "y", "X"]
TIMES = [1, 2, 3]

VALUES: dict[str, list[Any]] = {
    "number": METRIC_VALUES, "text": TEXT_VALUES, "status": STATUSES, "time": TIMES,
}  # fmt: skip
# (kind, key, type) of the fields filters and sorts use; type picks the operators and values.
FIELDS = [
    ("metrics", "m1", "number"),
    ("metrics", "m.2", "number"),
    ("params", "p1", "text"),
    ("params", "p 2", "text"),
    ("tags", "t1", "text"),
    ("attributes", "status", "status"),
    ("attributes", "name", "text"),
    ("attributes", "start_time", "time"),
    ("attributes", "end_time", "time"),
]


@dataclass(frozen=True)
class Run:
    id: str
    experiment: str
    status: str
    name: str
    start: int
    end: int | None
    deleted: bool
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]

    def value(self, kind: str, key: str) -> Any:
        if kind == "metrics":
            return self.metrics.get(key)
        if kind == "params":
            return self.params.get(key)
        if kind == "tags":
            return self.tags.get(key)
        return {"status": self.status, "name": self.name, "start_time": self.start,
                "end_time": self.end}[key]  # fmt: skip


def subset(draw: st.DrawFn, keys: list[str], values: list[Any]) -> dict[str, Any]:
    """Each key present or not, about half the time each."""
    drawn = {key: draw(st.none() | st.sampled_from(values)) for key in keys}
    return {key: value for key, value in drawn.items() if value is not None}


@st.composite
def run_lists(draw: st.DrawFn) -> list[Run]:
    count = draw(st.integers(2, 10))
    return [
        Run(
            id=f"r{number}",
            experiment=draw(st.sampled_from(["e1", "e2"])),
            status=draw(st.sampled_from(STATUSES)),
            name=draw(st.sampled_from(NAMES)),
            start=draw(st.sampled_from(TIMES)),
            end=draw(st.none() | st.sampled_from(TIMES)),
            deleted=draw(st.integers(0, 4)) == 4,  # rarely, so most runs stay in play
            metrics=subset(draw, ["m1", "m.2"], METRIC_VALUES),
            params=subset(draw, ["p1", "p 2"], TEXT_VALUES),
            tags=subset(draw, ["t1"], TEXT_VALUES),
        )
        for number in range(count)
    ]


# A filter tree: ("cmp", field, op, value) | ("and", a, b) | ("or", a, b) | ("not", a).
Tree = tuple[Any, ...]


@st.composite
def comparisons(draw: st.DrawFn) -> Tree:
    field = draw(st.sampled_from(FIELDS))
    kind = field[2]
    values = VALUES[kind]
    # Pick a family of operators first, so that each is drawn often enough to matter.
    families = [["=", "!="], ["<", "<=", ">", ">="], ["IN", "NOT IN"], ["IS NULL", "IS NOT NULL"]]
    if kind == "text":
        families.append(["LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE"])
    if kind == "status":
        families = [["=", "!=", "IN", "NOT IN"]]
    op = draw(st.sampled_from(draw(st.sampled_from(families))))
    if op in ("IN", "NOT IN"):
        value: Any = tuple(draw(st.lists(st.sampled_from(values), min_size=1, max_size=3)))
    elif op.endswith("LIKE"):
        value = "".join(draw(st.lists(st.sampled_from(PATTERN_PIECES), min_size=1, max_size=2)))
    elif op.startswith("IS"):
        value = None
    else:
        value = draw(st.sampled_from(values))
    return ("cmp", field, op, value)


trees = st.recursive(
    comparisons(),
    lambda inner: st.one_of(
        st.tuples(st.just("and"), inner, inner),
        st.tuples(st.just("or"), inner, inner),
        st.tuples(st.just("not"), inner),
    ),
    max_leaves=4,
)


def leaves(tree: Tree) -> Iterator[Tree]:
    if tree[0] == "cmp":
        yield tree
    else:
        for operand in tree[1:]:
            yield from leaves(operand)


def render_value(value: Any, kind: str) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(render_value(item, kind) for item in value) + ")"
    if kind in ("number", "time"):
        return repr(value)
    if kind == "status":
        value = value.upper() if len(value) % 2 else value  # any case is accepted
    return "'" + str(value).replace("'", "''") + "'"


def render_field(kind: str, key: str) -> str:
    if kind == "attributes":
        return key
    return f"{kind}.`{key}`" if " " in key else f"{kind}.{key}"


def render(tree: Tree) -> str:
    if tree[0] == "cmp":
        _, (kind, key, value_kind), op, value = tree
        text = f"{render_field(kind, key)} {op}"
        return text if value is None else f"{text} {render_value(value, value_kind)}"
    if tree[0] == "not":
        return f"NOT ({render(tree[1])})"
    return f"({render(tree[1])}) {tree[0]} ({render(tree[2])})"


def like(value: str, pattern: str, *, ignore_case: bool) -> bool:
    if ignore_case:
        value, pattern = value.lower(), pattern.lower()
    regex = ""
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            regex += re.escape(next(chars))
        else:
            regex += {"%": ".*", "_": "."}.get(char, re.escape(char))
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def evaluate(tree: Tree, run: Run) -> bool | None:
    """SQL's answer for one run: True, False or None (unknown)."""
    if tree[0] == "not":
        inner = evaluate(tree[1], run)
        return None if inner is None else not inner
    if tree[0] in ("and", "or"):
        left, right = evaluate(tree[1], run), evaluate(tree[2], run)
        decisive: bool = tree[0] == "or"  # True decides an OR, False decides an AND
        if decisive in (left, right):
            return decisive
        return None if None in (left, right) else not decisive
    _, (kind, key, _), op, wanted = tree
    actual = run.value(kind, key)
    if op == "IS NULL":
        return actual is None
    if op == "IS NOT NULL":
        return actual is not None
    if actual is None:
        return None
    if op.endswith("LIKE"):
        matched = like(actual, wanted, ignore_case="ILIKE" in op)
        return not matched if op.startswith("NOT") else matched
    if op in ("IN", "NOT IN"):
        inside = bool(actual in wanted)
        return inside if op == "IN" else not inside
    compare: Callable[[Any, Any], bool] = {
        "=": operator.eq, "!=": operator.ne, "<": operator.lt,
        "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    }[op]  # fmt: skip
    return compare(actual, wanted)


def python_order(matches: list[Run], order: list[tuple[tuple[str, str, str], bool]]) -> list[str]:
    terms = order or [(("attributes", "start_time", "time"), True)]

    def compare(a: Run, b: Run) -> int:
        for (kind, key, _), descending in terms:
            left, right = a.value(kind, key), b.value(kind, key)
            if (left is None) != (right is None):
                return 1 if left is None else -1  # missing values last, either direction
            if left is not None and left != right:
                result = -1 if left < right else 1
                return -result if descending else result
        return -1 if a.id > b.id else 1 if a.id < b.id else 0

    return [run.id for run in sorted(matches, key=functools.cmp_to_key(compare))]


def store(conn: sa.Connection, all_runs: list[Run]) -> None:
    for table in (latest_metrics, params, tags, runs):
        conn.execute(table.delete())
    if not all_runs:
        return
    conn.execute(
        runs.insert(),
        [
            {"id": run.id, "experiment_id": run.experiment, "name": run.name, "kind": "train",
             "status": run.status, "start_ms": run.start, "end_ms": run.end, "user": "u",
             "deleted_ms": 9 if run.deleted else None}
            for run in all_runs
        ],
    )  # fmt: skip
    metric_rows = [
        {"run_id": run.id, "key": key, "value": value, "step": 0, "timestamp_ms": 0}
        for run in all_runs
        for key, value in run.metrics.items()
    ]
    param_rows = [
        {"run_id": r.id, "key": k, "value": v} for r in all_runs for k, v in r.params.items()
    ]
    tag_rows = [{"run_id": r.id, "key": k, "value": v} for r in all_runs for k, v in r.tags.items()]
    for table, rows in ((latest_metrics, metric_rows), (params, param_rows), (tags, tag_rows)):
        if rows:
            conn.execute(table.insert(), rows)


@pytest.fixture(scope="module")
def engine() -> Iterator[sa.Engine]:
    engine = sa.create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            experiments.insert(), [{"id": e, "name": e, "created_ms": 0} for e in ("e1", "e2")]
        )
    yield engine
    engine.dispose()


def order_by_text(order: list[tuple[tuple[str, str, str], bool]]) -> list[str]:
    directions = {True: [" DESC", " desc"], False: ["", " ASC", " asc"]}
    return [
        render_field(kind, key) + directions[descending][len(key) % len(directions[descending])]
        for (kind, key, _), descending in order
    ]


SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(
    all_runs=run_lists(),
    filters=st.lists(trees, min_size=1, max_size=4),
    experiment_ids=st.sampled_from([None, ["e1", "e2"], ["e1"]]),
    include_deleted=st.booleans(),
)
def test_filters_match_what_python_says(
    engine: sa.Engine,
    all_runs: list[Run],
    filters: list[Tree],
    experiment_ids: list[str] | None,
    include_deleted: bool,
) -> None:
    with engine.begin() as conn:
        store(conn, all_runs)
    # Each comparison on its own too: inside a tree, AND/OR often hide what one of them says.
    for checked in [*filters, *(leaf for tree in filters for leaf in leaves(tree))]:
        query = build_search_query(
            experiment_ids=experiment_ids,
            filter=render(checked),
            order_by=None,
            limit=None,
            include_deleted=include_deleted,
        )
        with engine.connect() as conn:
            found = set(conn.scalars(query))
        expected = {
            run.id
            for run in all_runs
            if evaluate(checked, run) is True
            and (include_deleted or not run.deleted)
            and (experiment_ids is None or run.experiment in experiment_ids)
        }
        assert found == expected, render(checked)


@SETTINGS
@given(
    all_runs=run_lists(),
    tree=trees | st.none(),
    order=st.lists(st.tuples(st.sampled_from(FIELDS), st.booleans()), max_size=3),
    limit=st.none() | st.integers(1, 4),
    offset=st.sampled_from([0, 0, 1, 3]),
)
def test_order_and_pages_match_python_sorting(
    engine: sa.Engine,
    all_runs: list[Run],
    tree: Tree | None,
    order: list[tuple[tuple[str, str, str], bool]],
    limit: int | None,
    offset: int,
) -> None:
    query = build_search_query(
        experiment_ids=None,
        filter=None if tree is None else render(tree),
        order_by=order_by_text(order),
        limit=limit,
        offset=offset,
    )
    with engine.begin() as conn:
        store(conn, all_runs)
        found = list(conn.scalars(query))
    matches = [
        run for run in all_runs if (tree is None or evaluate(tree, run) is True) and not run.deleted
    ]
    expected = python_order(matches, order)
    assert found == expected[offset : None if limit is None else offset + limit]


@st.composite
def like_cases(draw: st.DrawFn) -> tuple[list[str], str]:
    """Values, and a pattern made from one of them: near misses that differ in case or length."""
    values = draw(st.lists(st.text(alphabet="aAbB%_'\\*?[", max_size=3), min_size=1, max_size=8))
    pattern = ""
    for char in draw(st.sampled_from(values)):
        literal = "\\" + char if char in "%_\\" else char
        way = draw(st.sampled_from(["same", "other case", "one", "any", "drop"]))
        pattern += {"same": literal, "other case": literal.swapcase(), "one": "_", "any": "%",
                    "drop": ""}[way]  # fmt: skip
    return values, pattern + draw(st.sampled_from(["", "", "%", "_", "a"]))


@SETTINGS
@given(case=like_cases(), op=st.sampled_from(["LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE"]))
def test_like_patterns_match_python(
    engine: sa.Engine, case: tuple[list[str], str], op: str
) -> None:
    values, pattern = case
    all_runs = [
        Run(f"r{n}", "e1", "running", "x", 1, None, False, {}, {"p1": value}, {})
        for n, value in enumerate(values)
    ]
    tree = ("cmp", ("params", "p1", "text"), op, pattern)
    query = build_search_query(experiment_ids=None, filter=render(tree), order_by=None, limit=None)
    with engine.begin() as conn:
        store(conn, all_runs)
        found = set(conn.scalars(query))
    assert found == {run.id for run in all_runs if evaluate(tree, run)}

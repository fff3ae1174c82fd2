"""The run-search filter language: parsing, errors, and the SQL it compiles to.

Queries run on a real SQLite database and, when reachable, a real PostgreSQL one, filled with
rows inserted directly into the schema's tables.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql, sqlite

from mloop.errors import InvalidFilterError, InvalidInputError
from mloop.store import _filter as filter_module
from mloop.store._filter import (
    MAX_DEPTH,
    MAX_FILTER_LENGTH,
    MAX_KEYS,
    And,
    Comparison,
    Field,
    Not,
    Or,
    OrderTerm,
    build_search_query,
    parse_filter,
    parse_order_by,
)
from mloop.store._filter_sql import ATTRIBUTE_COLUMNS
from mloop.store._schema import experiments, latest_metrics, metadata, params, runs, tags

# 2026-11-22T00:00:00Z in ms; run N starts N hours later (run 4 ties with run 2).
DAY_MS = 1_795_305_600_000
HOUR_MS = 3_600_000


def run_id(number: int) -> str:
    return f"run-{number:02d}"


RUNS: list[dict[str, Any]] = [
    {"id": 1, "exp": "e1", "name": "rf-baseline", "status": "finished", "start": 1, "end": 2,
     "user": "alice", "kind": "train", "git_commit": "abc123", "git_branch": "main"},
    {"id": 2, "exp": "e1", "name": "gbm", "status": "finished", "start": 2, "end": 3,
     "user": "bob", "kind": "train", "git_commit": "def456", "git_branch": "dev"},
    {"id": 3, "exp": "e1", "name": "RF-tuned", "status": "running", "start": 3, "end": None,
     "user": "alice", "kind": "train"},
    {"id": 4, "exp": "e2", "name": "fraud-rf", "status": "failed", "start": 2, "end": 4,
     "user": "carol", "kind": "train"},
    {"id": 5, "exp": "e1", "name": "deleted", "status": "finished", "start": 5, "end": 6,
     "user": "alice", "kind": "train", "deleted": 7},
    {"id": 6, "exp": "e1", "name": "trial-1", "status": "killed", "start": 4, "end": 5,
     "user": "alice", "kind": "trial", "parent": 1},
]  # fmt: skip
METRICS = {
    1: {"auc": 0.9, "loss": 0.3, "val loss": 0.25, "train/loss": 0.2, "val.auc": 0.88},
    2: {"auc": 0.85, "loss": 0.35},
    4: {"auc": 0.5, "loss": -1e-3},
    5: {"auc": 0.99},
    6: {"auc": 0.9},
}
PARAMS = {
    1: {"model": "rf", "lr": "0.1", "epochs": "10"},
    2: {"model": "gbm", "lr": "0.01", "epochs": "9"},
    3: {"model": "RF", "lr": "0.1"},
    4: {"model": "r%f", "lr": "1e-3"},
    5: {"model": "rf"},
    6: {"model": "rf_x", "lr": "0.1"},
}
TAGS = {1: {"stage": "prod"}, 2: {"stage": "dev", "note": "it's"}, 4: {"stage": "Prod"}}
LIVE = {1, 2, 3, 4, 6}  # run 5 is deleted


def fill(engine: sa.Engine) -> None:
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            experiments.insert(),
            [{"id": e, "name": e, "created_ms": DAY_MS} for e in ("e1", "e2")],
        )
        for run in RUNS:  # one by one: run 6 refers to run 1 as its parent
            conn.execute(
                runs.insert().values(
                    id=run_id(run["id"]),
                    experiment_id=run["exp"],
                    name=run["name"],
                    kind=run["kind"],
                    status=run["status"],
                    start_ms=DAY_MS + run["start"] * HOUR_MS,
                    end_ms=None if run["end"] is None else DAY_MS + run["end"] * HOUR_MS,
                    user=run["user"],
                    parent_run_id=run_id(run["parent"]) if "parent" in run else None,
                    git_commit=run.get("git_commit"),
                    git_branch=run.get("git_branch"),
                    deleted_ms=DAY_MS + run["deleted"] * HOUR_MS if "deleted" in run else None,
                )
            )
        conn.execute(
            latest_metrics.insert(),
            [
                {"run_id": run_id(n), "key": k, "value": v, "step": 0, "timestamp_ms": DAY_MS}
                for n, values in METRICS.items()
                for k, v in values.items()
            ],
        )
        for table, rows in ((params, PARAMS), (tags, TAGS)):
            conn.execute(
                table.insert(),
                [
                    {"run_id": run_id(n), "key": k, "value": v}
                    for n, values in rows.items()
                    for k, v in values.items()
                ],
            )


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def engine(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    """A database of each backend holding the runs above, shared by the module's tests."""
    if request.param == "sqlite":
        engine = sa.create_engine("sqlite://")
        fill(engine)
        yield engine
        engine.dispose()
        return
    admin: sa.Engine = request.getfixturevalue("postgres_admin")
    name = f"mloop_test_filter_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = sa.create_engine(admin.url.set(database=name))
    try:
        fill(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def search(
    engine: sa.Engine,
    filter: str | None = None,
    order_by: Sequence[str] | None = None,
    *,
    experiment_ids: Sequence[str] | None = None,
    limit: int | None = None,
    offset: int = 0,
    include_deleted: bool = False,
) -> list[int]:
    """The numbers of the matching runs, in the query's order."""
    query = build_search_query(
        experiment_ids=experiment_ids,
        filter=filter,
        order_by=order_by,
        limit=limit,
        offset=offset,
        include_deleted=include_deleted,
    )
    with engine.connect() as conn:
        return [int(found.removeprefix("run-")) for found in conn.scalars(query)]


def matching(engine: sa.Engine, filter: str) -> set[int]:
    return set(search(engine, filter))


# --- what filters match ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ("metrics.auc > 0.8", {1, 2, 6}),
        ("metrics.auc >= 0.9", {1, 6}),
        ("metrics.auc = 0.9", {1, 6}),
        ("metrics.auc == 0.9", {1, 6}),
        ("metrics.auc != 0.9", {2, 4}),
        ("metrics.auc <> 0.9", {2, 4}),
        ("metrics.auc < 0.85", {4}),
        ("metrics.auc <= 0.85", {2, 4}),
        ("metrics.loss < 0", {4}),
        ("metrics.loss > -1e-2", {1, 2, 4}),
        ("metrics.loss = -0.001", {4}),
        ("metrics.auc > 8e-1", {1, 2, 6}),
        ("metrics.auc > .8", {1, 2, 6}),
        ("metrics.auc >= 1", set()),
        ("metrics.auc in (0.5, 0.85)", {2, 4}),
        ("metrics.auc not in (0.5, 0.85)", {1, 6}),
        ("metrics.auc is null", {3}),
        ("metrics.auc is not null", {1, 2, 4, 6}),
        ("metrics.`val loss` < 0.3", {1}),
        ('metrics."val loss" < 0.3', {1}),
        ("metrics.train/loss = 0.2", {1}),
        ("metrics.val.auc > 0.5", {1}),
        ("metric.auc > 0.8", {1, 2, 6}),
        ("METRICS.auc > 0.8", {1, 2, 6}),
        ("metrics.AUC > 0.8", set()),  # keys are case-sensitive
    ],
)
def test_metric_comparisons(engine: sa.Engine, filter: str, expected: set[int]) -> None:
    assert matching(engine, filter) == expected


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ("params.model = 'rf'", {1}),
        ('params.model = "rf"', {1}),
        ("param.model = 'RF'", {3}),
        ("params.lr = '0.1'", {1, 3, 6}),
        ("params.model != 'rf'", {2, 3, 4, 6}),
        ("params.model in ('rf', 'gbm')", {1, 2}),
        ("params.model not in ('rf', 'gbm')", {3, 4, 6}),
        ("params.epochs is null", {3, 4, 6}),
        ("params.epochs < '9'", {1}),  # text compares character by character
        ("params.model < 'a'", {3}),  # by code point: 'RF' < 'a' on every database
        ("params.model >= 'r'", {1, 4, 6}),
        ("tags.stage = 'prod'", {1}),
        ("tag.stage != 'prod'", {2, 4}),
        ("tags.note = 'it''s'", {2}),
        ('tags.note = "it\'s"', {2}),
        ("tags.stage is null", {3, 6}),
    ],
)
def test_param_and_tag_comparisons(engine: sa.Engine, filter: str, expected: set[int]) -> None:
    assert matching(engine, filter) == expected


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ("params.model like 'r%'", {1, 4, 6}),  # case-sensitive on SQLite too
        ("params.model like 'R%'", {3}),
        ("params.model not like 'r%'", {2, 3}),
        ("params.model ilike 'r%'", {1, 3, 4, 6}),
        ("params.model not ilike 'r%'", {2}),
        ("params.model like 'r_f'", {4}),
        ("params.model like 'rf_x'", {6}),
        ("params.model like 'rf\\_x'", {6}),
        ("params.model like 'r\\%f'", {4}),
        ("params.model ilike 'R\\%F'", {4}),
        ("params.model not ilike 'R\\%F'", {1, 2, 3, 6}),
        ("params.model like '%f'", {1, 4}),
        ("params.model like '%'", {1, 2, 3, 4, 6}),
        ("params.model like 'r*'", set()),  # GLOB's wildcards are literals in LIKE
        ("name like 'rf-%'", {1}),
        ("name ilike 'rf-%'", {1, 3}),
        ("tags.stage ilike 'PROD'", {1, 4}),
    ],
)
def test_like_and_ilike(engine: sa.Engine, filter: str, expected: set[int]) -> None:
    assert matching(engine, filter) == expected


def test_like_underscore_matches_exactly_one_character(engine: sa.Engine) -> None:
    assert matching(engine, "params.model like 'r_'") == {1}
    assert matching(engine, "params.model ilike 'r_'") == {1, 3}
    assert matching(engine, "params.model like '_f'") == {1}
    assert matching(engine, "params.model ilike '_f'") == {1, 3}


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ("status = 'running'", {3}),
        ("status = 'FINISHED'", {1, 2}),
        ("status in ('failed', 'Killed')", {4, 6}),
        ("status != 'finished'", {3, 4, 6}),
        ("attributes.status = 'running'", {3}),
        ("run.status = 'running'", {3}),
        ("Status = 'running'", {3}),
        ("name = 'gbm'", {2}),
        ("user = 'alice'", {1, 3, 6}),
        ("kind = 'trial'", {6}),
        ("run_id = 'run-02'", {2}),
        ("id = 'run-02'", {2}),
        ("attributes.id in ('run-01', 'run-04')", {1, 4}),
        ("experiment_id = 'e2'", {4}),
        ("parent_run_id = 'run-01'", {6}),
        ("parent_run_id is null", {1, 2, 3, 4}),
        ("git_commit = 'abc123'", {1}),
        ("git_branch is not null", {1, 2}),
        ("end_time is null", {3}),
        (f"start_time = {DAY_MS + 2 * HOUR_MS}", {2, 4}),
        (f"start_time > {DAY_MS + 2 * HOUR_MS}", {3, 6}),
        (f"start_time >= {(DAY_MS + 3 * HOUR_MS) / 1000}e3", {3, 6}),
        ("start_time >= '2026-11-22T03:00:00Z'", {3, 6}),
        ("start_time >= '2026-11-22T03:00:00'", {3, 6}),  # naive is UTC
        ("start_time >= '2026-11-22T05:00:00+02:00'", {3, 6}),
        ("start_time < '2026-11-22 02:00'", {1}),
        ("start_time > '2026-11-22'", {1, 2, 3, 4, 6}),
        ("end_time < '2026-11-22T03:00:00.001Z'", {1, 2}),
        ("start_time in ('2026-11-22T01:00Z', " + str(DAY_MS + 4 * HOUR_MS) + ")", {1, 6}),
    ],
)
def test_attribute_comparisons(engine: sa.Engine, filter: str, expected: set[int]) -> None:
    assert matching(engine, filter) == expected


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ("metrics.auc > 0.8 and params.model = 'rf'", {1}),
        ("metrics.auc > 0.8 AND params.lr = '0.1' And status = 'finished'", {1}),
        ("params.model = 'gbm' or tags.stage = 'Prod'", {2, 4}),
        ("params.model = 'gbm' or tags.stage = 'Prod' and metrics.auc > 0.8", {2}),
        ("(params.model = 'gbm' or tags.stage = 'Prod') and metrics.auc > 0.8", {2}),
        ("(params.model = 'gbm' or tags.stage = 'Prod') and metrics.auc < 0.8", {4}),
        ("not status = 'finished'", {3, 4, 6}),
        ("not not status = 'finished'", {1, 2}),
        ("not (status = 'finished' or status = 'running')", {4, 6}),
        ("not status = 'running' and user = 'alice'", {1, 6}),
        ("((((metrics.auc > 0.8))))", {1, 2, 6}),
        ("metrics.auc>0.8 and params.model='rf'", {1}),
        ("  metrics.auc\t>\n0.8  ", {1, 2, 6}),
    ],
)
def test_boolean_combinations(engine: sa.Engine, filter: str, expected: set[int]) -> None:
    assert matching(engine, filter) == expected


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        # Run 3 has no auc: a comparison on it is unknown and never matches, even negated.
        ("metrics.auc > 0.8", {1, 2, 6}),
        ("not metrics.auc > 0.8", {4}),
        ("not metrics.auc is null", {1, 2, 4, 6}),
        # ... but unknown AND false is false: run 3's model is 'RF', so NOT makes it match.
        ("not (metrics.auc > 0.8 and params.model = 'rf')", {2, 3, 4, 6}),
        # Unknown OR true is true: run 3 matches through its model param.
        ("metrics.auc > 0.8 or params.model = 'RF'", {1, 2, 3, 6}),
        ("not (metrics.auc > 0.8 or params.model = 'RF')", {4}),
        ("params.epochs != '10'", {2}),
        ("not params.epochs = '10'", {2}),
        ("params.epochs not in ('10')", {2}),
        ("params.epochs not like '1%'", {2}),
        ("metrics.auc is null or metrics.auc < 0.6", {3, 4}),
        ("end_time > 0 or end_time is null", {1, 2, 3, 4, 6}),
        ("not end_time > 0", set()),
    ],
)
def test_missing_values_never_match_a_comparison(
    engine: sa.Engine, filter: str, expected: set[int]
) -> None:
    assert matching(engine, filter) == expected


def test_no_filter_matches_every_live_run(engine: sa.Engine) -> None:
    assert set(search(engine)) == LIVE
    assert set(search(engine, "")) == LIVE
    assert set(search(engine, "   \n")) == LIVE


def test_deleted_runs_are_left_out_unless_asked_for(engine: sa.Engine) -> None:
    assert matching(engine, "metrics.auc > 0.95") == set()
    assert search(engine, "metrics.auc > 0.95", include_deleted=True) == [5]
    assert set(search(engine, include_deleted=True)) == LIVE | {5}


def test_experiment_ids_restrict_the_search(engine: sa.Engine) -> None:
    assert set(search(engine, experiment_ids=["e2"])) == {4}
    assert set(search(engine, experiment_ids=("e1", "e2"))) == LIVE
    assert set(search(engine, "metrics.auc > 0", experiment_ids=["e1"])) == {1, 2, 6}
    assert search(engine, experiment_ids=[]) == []
    assert search(engine, experiment_ids=["nope"]) == []


# --- order and pages ------------------------------------------------------------------------


def test_default_order_is_newest_first_then_id_descending(engine: sa.Engine) -> None:
    # runs 2 and 4 start at the same time: the larger id comes first
    assert search(engine) == [6, 3, 4, 2, 1]
    assert search(engine, order_by=[]) == [6, 3, 4, 2, 1]


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        (["metrics.auc DESC"], [6, 1, 2, 4, 3]),  # 1 and 6 tie: id DESC; 3 has none: last
        (["metrics.auc"], [4, 2, 6, 1, 3]),  # missing values last when ascending too
        (["metrics.auc asc"], [4, 2, 6, 1, 3]),
        (["metrics.auc DESC", "start_time"], [1, 6, 2, 4, 3]),
        (["params.epochs"], [1, 2, 6, 4, 3]),  # '10' < '9'; runs without it by id DESC
        (["params.model"], [3, 2, 4, 1, 6]),  # 'RF' < 'gbm' < 'r%f' < 'rf' < 'rf_x'
        (["params.model DESC"], [6, 1, 4, 2, 3]),
        (["end_time DESC"], [6, 4, 2, 1, 3]),
        (["end_time"], [1, 2, 4, 6, 3]),
        (["status", "name"], [4, 2, 1, 6, 3]),
        (["name"], [3, 4, 2, 1, 6]),
        (["start_time"], [1, 4, 2, 3, 6]),
        (["metrics.`val loss`"], [1, 6, 4, 3, 2]),
        (["tags.stage", "metrics.auc DESC"], [4, 2, 1, 6, 3]),  # 'Prod' < 'dev' < 'prod'
        (["run_id"], [1, 2, 3, 4, 6]),
    ],
)
def test_order_by(engine: sa.Engine, order_by: list[str], expected: list[int]) -> None:
    assert search(engine, order_by=order_by) == expected


def test_order_by_combines_with_a_filter_on_the_same_key(engine: sa.Engine) -> None:
    assert search(engine, "metrics.auc > 0.6", ["metrics.auc"]) == [2, 6, 1]


@pytest.mark.parametrize("order_by", [None, ["metrics.auc DESC"], ["params.model"]])
def test_pages_neither_overlap_nor_skip(engine: sa.Engine, order_by: list[str] | None) -> None:
    everything = search(engine, order_by=order_by)
    pages = [search(engine, order_by=order_by, limit=2, offset=at) for at in range(0, 6, 2)]
    assert [run for page in pages for run in page] == everything
    assert search(engine, order_by=order_by, offset=3) == everything[3:]
    assert search(engine, order_by=order_by, limit=1) == everything[:1]


def test_each_key_is_joined_once() -> None:
    query = build_search_query(
        experiment_ids=None,
        filter="metrics.auc > 0.8 and (metrics.auc < 0.95 or params.model = 'rf') "
        "and params.model != 'x' and status = 'finished'",
        order_by=["metrics.auc DESC", "tags.stage", "start_time"],
        limit=None,
    )
    sql = str(query.compile(dialect=sqlite.dialect()))
    assert sql.count("LEFT OUTER JOIN") == 3
    assert sql.count("latest_metrics AS") == 1
    assert sql.count("params AS") == 1
    assert sql.count("tags AS") == 1


def test_postgresql_sql_compares_text_by_code_point() -> None:
    query = build_search_query(
        experiment_ids=None,
        filter="params.model < 'a' and params.model like 'r%'",
        order_by=["name"],
        limit=None,
    )
    sql = str(query.compile(dialect=postgresql.dialect()))  # type: ignore[no-untyped-call]
    assert sql.count('COLLATE "C"') == 2  # the < and the ORDER BY; LIKE needs none
    assert "LIKE" in sql
    assert "GLOB" in str(query.compile(dialect=sqlite.dialect()))


# --- the syntax tree ------------------------------------------------------------------------

AUC = Field("metrics", "auc")
MODEL = Field("params", "model")
STATUS = Field("attributes", "status")
START = Field("attributes", "start_time")


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("metrics.auc > 0.8", Comparison(AUC, ">", 0.8)),
        ("metrics.auc > 1", Comparison(AUC, ">", 1.0)),
        ("metrics.auc = -2.5E+3", Comparison(AUC, "=", -2500.0)),
        ("params.model = 'rf'", Comparison(MODEL, "=", "rf")),
        ("params.model == 'rf'", Comparison(MODEL, "=", "rf")),
        ("params.model <> 'rf'", Comparison(MODEL, "!=", "rf")),
        ("params.model In ('a', \"b\")", Comparison(MODEL, "IN", ("a", "b"))),
        ("params.model NOT in ('a')", Comparison(MODEL, "NOT IN", ("a",))),
        ("params.model Like 'r%'", Comparison(MODEL, "LIKE", "r%")),
        ("params.model not ILIKE 'r%'", Comparison(MODEL, "NOT ILIKE", "r%")),
        ("params.model is NULL", Comparison(MODEL, "IS NULL")),
        ("params.model IS not null", Comparison(MODEL, "IS NOT NULL")),
        ("status = 'KILLED'", Comparison(STATUS, "=", "killed")),
        ("run.id = 'x'", Comparison(Field("attributes", "run_id"), "=", "x")),
        ("start_time > '1970-01-01T00:00:01Z'", Comparison(START, ">", 1000)),
        ("end_time < 1.5e3", Comparison(Field("attributes", "end_time"), "<", 1500)),
        ("params.`a b` = ''", Comparison(Field("params", "a b"), "=", "")),
        ("params.`a``b` = 'x'", Comparison(Field("params", "a`b"), "=", "x")),
        ("tags.k:v/w.x-y_z = 'x'", Comparison(Field("tags", "k:v/w.x-y_z"), "=", "x")),
        (
            "metrics.auc > 0.8 and params.model = 'rf' or status = 'killed'",
            Or((And((Comparison(AUC, ">", 0.8), Comparison(MODEL, "=", "rf"))),
                Comparison(STATUS, "=", "killed"))),
        ),
        (
            "metrics.auc > 0.8 or params.model = 'rf' and not status = 'killed'",
            Or((Comparison(AUC, ">", 0.8),
                And((Comparison(MODEL, "=", "rf"), Not(Comparison(STATUS, "=", "killed")))))),
        ),
        (
            "not (metrics.auc > 0.8 or metrics.auc < 0.1)",
            Not(Or((Comparison(AUC, ">", 0.8), Comparison(AUC, "<", 0.1)))),
        ),
    ],
)  # fmt: skip
def test_parse_filter_builds_the_tree(text: str, tree: object) -> None:
    assert parse_filter(text) == tree


def test_parse_order_by() -> None:
    assert parse_order_by(["metrics.auc DESC", "start_time", "params.`a b` asc", "id desc"]) == [
        OrderTerm(AUC, descending=True),
        OrderTerm(Field("attributes", "start_time")),
        OrderTerm(Field("params", "a b")),
        OrderTerm(Field("attributes", "run_id"), descending=True),
    ]


def test_fields_print_as_they_are_written() -> None:
    assert str(AUC) == "metrics.auc"
    assert str(Field("metrics", "val loss")) == "metrics.`val loss`"
    assert str(STATUS) == "status"


def test_the_documented_attributes_are_the_filterable_ones() -> None:
    assert filter_module.__doc__ is not None
    for name in ATTRIBUTE_COLUMNS:
        assert f"``{name}``" in filter_module.__doc__
    for name in ("run_id", "start_time", "end_time", "status"):
        assert ATTRIBUTE_COLUMNS[name].table is runs


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metrics.auc>1 && x", "at position 14 ('&&'): expected AND, OR or the end of the filter"),
        ("metrics.auc > 0.8 || x", "at position 18 ('||'): expected AND, OR or the end"),
        ("metrics.auc > 0.8 params.x = 'a'", "at position 18 ('params.x'): expected AND, OR"),
        ("", "at position 0 (end of the filter): expected a field"),
        ("metrics.auc", "at position 11 (end of the filter): expected an operator after "
         "metrics.auc: =, !=, <, <=, >, >=, LIKE, ILIKE, IN or IS"),
        ("metrics.auc >", "at position 13 (end of the filter): expected a value"),
        ("metrics.auc ! 1", "at position 12 ('!'): expected an operator"),
        ("metrics.auc => 1", "at position 13 ('>'): expected a value"),
        ("foo = 1", "at position 0 ('foo'): unknown attribute 'foo'; expected a field: "
         "metrics.<key>, params.<key>, tags.<key> or an attribute (run_id, name, status, user, "
         "kind, start_time, end_time, experiment_id, parent_run_id, git_commit, git_branch or id)"),
        ("attributes.foo = 'x'", "at position 0 ('attributes.foo'): unknown attribute 'foo'"),
        ("metricz.auc > 1", "at position 0 ('metricz.auc'): unknown prefix 'metricz.'"),
        ("metrics. > 1", "at position 0 ('metrics.'): expected a key after metrics."),
        ("metrics.`` > 1", "at position 0 ('metrics.``'): expected a key between the quotes"),
        ("`val loss` > 1", "at position 0 ('`val loss`'): put the prefix before the quoted key, "
         "e.g. metrics.`val loss`"),
        ("attributes.`name` = 'x'", "at position 0 ('attributes.`name`'): expected metrics., "
         "params. or tags. before a quoted key"),
        ("'rf' = params.model", "at position 0 (\"'rf'\"): expected a field"),
        ("and = 1", "at position 0 ('and'): expected a field"),
        ("metrics.auc > 0.8 and", "at position 21 (end of the filter): expected a field"),
        ("(metrics.auc > 0.8", "at position 18 (end of the filter): expected AND, OR or ')' "
         "to close the '(' at 0"),
        ("metrics.auc > 0.8)", "at position 17 (')'): expected AND, OR or the end"),
        ("()", "at position 1 (')'): expected a field"),
        ("metrics.auc > 'x'", "at position 14 (\"'x'\"): metrics are numbers: "
         "write metrics.auc > 0.8"),
        ("metrics.auc > '0.9'", "metrics are numbers: write metrics.auc > 0.9"),
        ("metrics.auc in ('0.9')", "metrics are numbers: write metrics.auc IN (0.9, ...)"),
        ("params.lr = 0.1", "at position 12 ('0.1'): params are strings: write params.lr = '0.1'"),
        ("tags.n in (1, 2)", "at position 11 ('1'): tags are strings: write tags.n IN ('1', ...)"),
        ("name = 5", "at position 7 ('5'): name is text: write name = '5'"),
        ("params.model = rf", "at position 15 ('rf'): expected a value; quote text: "
         "params.model = 'rf'"),
        ("params.model = null", "at position 15 ('null'): compare with NULL by writing "
         "params.model IS NULL or IS NOT NULL"),
        ("params.model = `rf`", "at position 15 ('`rf`'): expected a value: quote strings"),
        ("params.model = (", "at position 15 ('('): expected a value"),
        ("metrics.auc like '0.%'", "at position 12 ('like'): LIKE compares text, and metrics.auc "
         "is a number"),
        ("start_time not like '2026%'", "at position 11 ('not'): NOT LIKE compares text, and "
         "start_time is a time"),
        ("status ilike 'r%'", "at position 7 ('ilike'): ILIKE compares text; status is one of "
         "running, finished, failed, killed: use = or IN"),
        ("params.model like 5", "at position 18 ('5'): expected a quoted pattern after LIKE"),
        ("params.model like 'a\\'", "lone backslash"),
        ("params.model like 'a\\\\\\'", "lone backslash"),
        ("params.model not = 'x'", "at position 17 ('='): expected LIKE, ILIKE or IN after NOT"),
        ("params.model is 'x'", "at position 16 (\"'x'\"): expected NULL or NOT NULL after IS"),
        ("params.model is not 'x'", "at position 20 (\"'x'\"): expected NULL or NOT NULL"),
        ("params.model in 'x'", "at position 16 (\"'x'\"): expected '(' and a list of values "
         "after IN"),
        ("params.model in ()", "at position 17 (')'): expected a value"),
        ("params.model in ('a' 'b')", "at position 21 (\"'b'\"): expected ',' or ')' in the list"),
        ("params.model in ('a',)", "at position 21 (')'): expected a value"),
        ("params.model = 'rf", "at position 15 (\"'rf\"): expected a closing '"),
        ('params.model = "rf', "at position 15 ('\"rf'): expected a closing \""),
        ("metrics.`val loss > 1", "at position 8 ('`val loss > 1'): expected a closing `"),
        ("params.model = 'a\x00b'", "at position 15 (\"'a\\x00b'\"): a quoted value cannot "
         "contain a NUL character"),
        ("metrics.auc > 1.2.3", "at position 14 ('1.2.3'): expected a number such as 0.8"),
        ("metrics.auc > 1e", "at position 14 ('1e'): expected a number"),
        ("metrics.auc > 1e999", "at position 14 ('1e999'): expected a number between"),
        ("metrics.auc > -", "at position 14 ('-'): expected a value"),
        ("start_time > 2026-11-22", "at position 13 ('2026-11-22'): expected a number such as "
         "0.8, -1 or 1e-3; quote text and times, e.g. '2026-11-22'"),
        ("start_time > '22/11/2026'", "at position 13 (\"'22/11/2026'\"): expected a time: an "
         "ISO-8601 string such as '2026-11-22' or '2026-11-22T10:00:00Z', or milliseconds"),
        ("start_time > '2026-02-30'", "expected a time"),
        ("start_time > '2026-13-01'", "expected a time"),
        ("start_time > 1.5", "at position 13 ('1.5'): expected whole milliseconds"),
        ("end_time > 1e300", "expected whole milliseconds"),
        ("status = 'done'", "at position 9 (\"'done'\"): status is one of running, finished, "
         "failed, killed"),
        ("status = 1", "at position 9 ('1'): status is text"),
        ("metrics.a = 1 and (b = 2", "at position 19 ('b'): unknown attribute 'b'"),
        ("metrics.auc > 0.8 and 'x" + "y" * 60, "at position 22 (\"'xyyyy"),
        ("metrics.auc > 0.8 and 'x" + "y" * 60, "yyy...\"): expected a closing '"),
    ],
)  # fmt: skip
def test_filter_errors_name_token_position_and_expectation(text: str, message: str) -> None:
    with pytest.raises(InvalidFilterError) as raised:
        parse_filter(text)
    assert str(raised.value).startswith("invalid filter at position ")
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["metrics.auc DESCC"], "invalid order_by[0] at position 12 ('DESCC'): expected ASC, "
         "DESC or the end of the item"),
        (["start_time", "metrics.auc desc desc"], "invalid order_by[1] at position 17 ('desc')"),
        ([""], "invalid order_by[0] at position 0 (end of the item): expected a field"),
        (["foo"], "invalid order_by[0] at position 0 ('foo'): unknown attribute 'foo'"),
        (["metrics.auc > 1"], "invalid order_by[0] at position 12 ('>'): expected ASC, DESC"),
        (["params.`a"], "invalid order_by[0] at position 7 ('`a'): expected a closing `"),
    ],
)  # fmt: skip
def test_order_by_errors(items: list[str], message: str) -> None:
    with pytest.raises(InvalidFilterError) as raised:
        parse_order_by(items)
    assert message in str(raised.value)


def test_filter_length_is_limited() -> None:
    just_fits = "name = '" + "x" * (MAX_FILTER_LENGTH - len("name = ''")) + "'"
    assert len(just_fits) == MAX_FILTER_LENGTH
    parse_filter(just_fits)
    with pytest.raises(InvalidFilterError, match=r"position 10000 .*limit is 10,000 characters"):
        parse_filter(just_fits + "1")
    with pytest.raises(InvalidFilterError, match=r"order_by\[0\] at position 10000"):
        parse_order_by(["x" * (MAX_FILTER_LENGTH + 1)])


def test_number_of_keys_is_limited() -> None:
    keys = [f"metrics.m{n} > 0" for n in range(MAX_KEYS)]
    parse_filter(" or ".join(keys))
    too_many = " or ".join([*keys, "tags.one_too_many = 'x'"])
    with pytest.raises(InvalidFilterError) as raised:
        parse_filter(too_many)
    position = too_many.index("tags.one_too_many")
    assert f"at position {position} ('tags.one_too_many'): a filter may use at most 50" in str(
        raised.value
    )
    # Attributes do not count, and the same key counts once.
    parse_filter(" and ".join([*keys, *keys, "status = 'running'", "name = 'x'"]))


def test_keys_of_filter_and_order_by_count_together() -> None:
    keys = " or ".join(f"metrics.m{n} > 0" for n in range(MAX_KEYS))
    build_search_query(
        experiment_ids=None, filter=keys, order_by=["metrics.m0", "name"], limit=None
    )
    with pytest.raises(InvalidFilterError, match=r"order_by\[1\] at position 0 \('params.p'\)"):
        build_search_query(
            experiment_ids=None, filter=keys, order_by=["name", "params.p"], limit=None
        )


def test_nesting_depth_is_limited() -> None:
    deep = "(" * MAX_DEPTH + "status = 'running'" + ")" * MAX_DEPTH
    parse_filter(deep)
    with pytest.raises(InvalidFilterError) as raised:
        parse_filter("(" + deep + ")")
    assert f"at position {MAX_DEPTH} ('('): parentheses and NOT nest more than 50 deep" in str(
        raised.value
    )
    parse_filter("not " * MAX_DEPTH + "status = 'running'")
    with pytest.raises(InvalidFilterError, match=r"position 200 \('not'\): parentheses and NOT"):
        parse_filter("not " * (MAX_DEPTH + 1) + "status = 'running'")
    # Long flat chains are not nesting.
    parse_filter(" and ".join(["status = 'running'"] * 400))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"filter": 42}, "filter must be a string such as \"metrics.auc > 0.8\" or None, not int"),
        ({"filter": b"metrics.auc > 1"}, "filter must be a string"),
        ({"order_by": "metrics.auc DESC"}, "order_by must be a list of strings such as "
         "['metrics.auc DESC'], not str"),
        ({"order_by": 1}, "order_by must be a list of strings"),
        ({"order_by": ["name", 3]}, "order_by[1] must be a string such as 'metrics.auc DESC', "
         "not int"),
        ({"limit": 0}, "limit must be a whole number ≥ 1 or None, not 0"),
        ({"limit": -1}, "limit must be a whole number ≥ 1 or None, not -1"),
        ({"limit": True}, "limit must be a whole number ≥ 1 or None, not True"),
        ({"limit": 2.0}, "limit must be a whole number"),
        ({"limit": "10"}, "limit must be a whole number"),
        ({"limit": 2**63}, "limit must be a whole number"),
        ({"offset": -1}, "offset must be a whole number ≥ 0, not -1"),
        ({"offset": None}, "offset must be a whole number ≥ 0, not None"),
        ({"offset": False}, "offset must be a whole number ≥ 0, not False"),
        ({"experiment_ids": "e1"}, "experiment_ids must be a list of experiment ids or None, "
         "not str"),
        ({"experiment_ids": [1]}, "experiment_ids must contain only strings"),
    ],
)  # fmt: skip
def test_wrong_argument_types_name_the_argument(arguments: dict[str, Any], message: str) -> None:
    kwargs: dict[str, Any] = {"experiment_ids": None, "filter": None, "order_by": None}
    kwargs["limit"] = None
    with pytest.raises(InvalidInputError) as raised:
        build_search_query(**(kwargs | arguments))
    assert message in str(raised.value)
    assert not isinstance(raised.value, InvalidFilterError)


def test_parse_functions_refuse_wrong_types() -> None:
    with pytest.raises(InvalidInputError, match="filter must be a string"):
        parse_filter(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="order_by must be a list"):
        parse_order_by("start_time")


def test_the_error_message_in_the_docs_is_real() -> None:
    assert filter_module.__doc__ is not None
    documented = filter_module.__doc__.rsplit("::", 1)[1].strip()
    with pytest.raises(InvalidFilterError) as raised:
        parse_filter("metrics.auc>1 && metrics.auc<2")
    assert str(raised.value) == documented


# --- fuzzing: the parser answers with a tree or an InvalidFilterError, nothing else ----------

_PIECES = [
    "metrics.auc", "params.model", "tags.`a b`", "metrics.", "status", "start_time", "foo",
    "and", "OR", "not", "NOT", "in", "like", "ilike", "is", "null", "asc", "desc",
    "(", ")", ",", "=", "!=", "<>", "<", ">=", "==", "!", "&&", "'rf'", "'", '"', "`",
    "0.8", "-1", "1e3", "1e", ".5", "+", "-", "'2026-11-22'", "'running'", "\\", "%", " ",
]  # fmt: skip
FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _parses_or_explains(text: str) -> None:
    try:
        parse_filter(text)
    except InvalidFilterError as error:
        message = str(error)
    else:
        return
    assert message.startswith("invalid filter at position ")


@FUZZ
@given(st.text(max_size=200))
def test_fuzz_any_text(text: str) -> None:
    _parses_or_explains(text)


@FUZZ
@given(st.lists(st.sampled_from(_PIECES), max_size=25).map(" ".join))
def test_fuzz_token_soup(text: str) -> None:
    _parses_or_explains(text)


@FUZZ
@given(st.lists(st.sampled_from(_PIECES), max_size=25).map("".join))
def test_fuzz_token_soup_without_spaces(text: str) -> None:
    _parses_or_explains(text)


@FUZZ
@given(st.lists(st.text(max_size=30) | st.sampled_from(_PIECES), max_size=4))
def test_fuzz_order_by(items: list[str]) -> None:
    try:
        parse_order_by(items)
    except InvalidFilterError as error:
        message = str(error)
    else:
        return
    assert message.startswith("invalid order_by[")


def test_iso_times_are_utc_milliseconds() -> None:
    tree = parse_filter("start_time >= '2026-11-22T10:00:00Z'")
    assert isinstance(tree, Comparison)
    expected = datetime(2026, 11, 22, 10, tzinfo=UTC).timestamp() * 1000
    assert tree.value == int(expected)

"""Building DAGs from plain function calls, and refusing what cannot be built."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from mloop.compute import Resources
from mloop.errors import InvalidKeyError, InvalidValueError, PipelineError
from mloop.pipelines import Pipeline, Step, load_pipelines, pipeline, step
from mloop.pipelines._step import source_digest


@step
def one() -> int:
    return 1


@step
def plus(a: int, b: int = 1) -> int:
    return a + b


@step
def pair(x: int) -> tuple[int, int]:
    return x, -x


@step
def many(values: list[int], weights: dict[str, int]) -> int:
    return sum(values) + sum(weights.values())


def test_calls_make_nodes_and_edges() -> None:
    @pipeline
    def flow(n: int = 2):
        a = one()
        chain = a
        for _ in range(n):
            chain = plus(chain)
        left, right = pair(a)
        return many([chain, left, 5], {"w": right, "k": 3})

    graph = flow.graph()
    assert list(graph.nodes) == ["one", "plus", "plus_2", "pair", "many"]
    assert graph.nodes["plus_2"].upstream == ["plus"]
    assert graph.nodes["many"].upstream == ["plus_2", "pair"]
    assert graph.edges() == [
        ("one", "plus", "output → a"),
        ("plus", "plus_2", "output → a"),
        ("one", "pair", "output → x"),
        ("plus_2", "many", "output → values/0"),
        ("pair", "many", "output_0 → values/1"),
        ("pair", "many", "output_1 → weights/w"),
    ]
    assert graph.descendants("one") == ["plus", "plus_2", "pair", "many"]
    assert len(flow.graph(n=5).nodes) == 8  # the structure follows the parameters


def test_steps_called_outside_a_pipeline_just_run() -> None:
    assert plus(2, 3) == 5
    assert pair(4) == (4, -4)


def test_outputs_come_from_the_declaration_or_a_tuple_annotation() -> None:
    assert pair.options.outputs == ("output_0", "output_1")
    assert one.options.outputs == ("output",)

    @step(outputs=("train", "test"))
    def split(x: int):  # type: ignore[no-untyped-def]
        return x, x

    assert split.options.outputs == ("train", "test")

    @step
    def variadic(x: int) -> tuple[int, ...]:
        return (x,)

    assert variadic.options.outputs == ("output",)  # tuple[int, ...] is one value


def test_misusing_an_output_while_building_is_explained() -> None:
    @pipeline
    def branching():
        if one():
            return plus(1)
        return None

    with pytest.raises(PipelineError, match="placeholder, not its value"):
        branching.graph()

    @pipeline
    def unpacking():
        a, _ = one()
        return a

    with pytest.raises(PipelineError, match="declare @step\\(outputs=2\\)"):
        unpacking.graph()

    @pipeline
    def attribute():
        return one().shape

    with pytest.raises(PipelineError, match=r"attribute \.shape"):
        attribute.graph()


def test_bad_step_calls_are_refused_at_build_time() -> None:
    @pipeline
    def wrong_args():
        return plus(1, 2, 3)

    with pytest.raises(PipelineError, match="step 'plus' was called with too many"):
        wrong_args.graph()

    @pipeline
    def not_json():
        return plus(object())

    with pytest.raises(PipelineError, match="argument a is a object"):
        not_json.graph()

    @pipeline
    def nan():
        return plus(float("nan"))

    with pytest.raises(PipelineError, match="a is nan"):
        nan.graph()

    @pipeline
    def empty():
        return 1

    with pytest.raises(PipelineError, match="called no steps"):
        empty.graph()

    @pipeline
    def fails():
        raise KeyError("boom")

    with pytest.raises(PipelineError, match="building pipeline 'fails' failed: KeyError"):
        fails.graph()


def test_outputs_cannot_cross_pipelines() -> None:
    leaked = []

    @pipeline
    def first():
        leaked.append(one())
        return leaked[-1]

    @pipeline
    def second():
        return plus(leaked[0])

    first.graph()
    with pytest.raises(PipelineError, match="from another pipeline"):
        second.graph()

    @pipeline
    def nested():
        return first.run()

    with pytest.raises(PipelineError, match="pipelines do not nest"):
        nested.graph()


def _f() -> int:
    return 1


def _flow() -> object:
    return one()


def test_step_options_are_checked() -> None:
    with pytest.raises(InvalidValueError, match="retries"):
        step(retries=-1)(_f)
    with pytest.raises(InvalidValueError, match="timeout"):
        step(timeout=0)(_f)
    with pytest.raises(InvalidValueError, match="timeout"):
        step(timeout=float("inf"))(_f)
    with pytest.raises(InvalidValueError, match="at least one output"):
        step(outputs=0)(_f)
    with pytest.raises(InvalidValueError, match="unique"):
        step(outputs=["a", "a"])(_f)
    with pytest.raises(InvalidValueError, match="retry_backoff"):
        step(retry_backoff=0.5)(_f)
    with pytest.raises(InvalidKeyError):
        step(name="../etc")(_f)
    with pytest.raises(InvalidValueError, match="either resources= or cpu="):
        step(resources=Resources(cpu=1), cpu=2)(_f)
    with pytest.raises(InvalidValueError, match="no serializer named 'yaml'"):
        step(serializer="yaml")(_f)
    with pytest.raises(InvalidValueError, match="already a step"):
        step(one)
    assert step(cpu=2, memory="1GiB")(_f).options.resources == Resources(cpu=2, memory="1GiB")
    assert plus.with_options(retries=3).options.retries == 3
    with pytest.raises(InvalidValueError, match="unknown step options: colour"):
        plus.with_options(colour="red")


def test_pipeline_schedule_options_are_checked() -> None:
    scheduled = pipeline(schedule="0 3 * * *", catchup="all")(_flow)
    assert isinstance(scheduled, Pipeline)
    assert (scheduled.schedule, scheduled.catchup, scheduled.triggers) == ("0 3 * * *", "all", ())
    assert pipeline(_flow).catchup == "latest"
    marker = object()
    assert pipeline(triggers=[marker])(_flow).triggers == (marker,)
    with pytest.raises(InvalidValueError, match="not a cron expression"):
        pipeline(schedule="every day")(_flow)
    with pytest.raises(InvalidValueError, match="catchup must be one of latest, all, skip"):
        pipeline(catchup="some")(_flow)
    with pytest.raises(InvalidValueError, match="list of triggers"):
        pipeline(triggers="alert")(_flow)


def _module(path: Path, name: str, source: str) -> Step:
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found = module.work
    assert isinstance(found, Step)
    return found


def test_the_source_digest_ignores_formatting_not_code(tmp_path: Path) -> None:
    base = "from mloop.pipelines import step\n@step\ndef work(x):\n    return x + 1\n"
    same = (
        "from mloop.pipelines import step\n\n\n@step\ndef work( x ):  # a comment\n\n"
        "    return (x + 1)\n"
    )
    other = "from mloop.pipelines import step\n@step\ndef work(x):\n    return x + 2\n"
    digests = [
        _module(tmp_path / f"m{i}.py", f"digest_mod_{i}", text).digest
        for i, text in enumerate((base, same, other))
    ]
    assert digests[0] == digests[1]
    assert digests[0] != digests[2]
    # No source (made by exec): the bytecode stands in.
    namespace: dict[str, object] = {}
    exec("def f(x):\n    return x * 3\n", namespace)
    assert len(source_digest(namespace["f"])) == 64  # type: ignore[arg-type]


def test_load_pipelines_from_a_project(tmp_path: Path) -> None:
    (tmp_path / "helpers_for_flows.py").write_text("VALUE = 3\n")
    (tmp_path / "pipelines.py").write_text(
        "from helpers_for_flows import VALUE\n"
        "from mloop.pipelines import pipeline, step\n"
        "@step\ndef value() -> int:\n    return VALUE\n"
        "@pipeline\ndef b_flow():\n    return value()\n"
        "@pipeline(name='a_flow')\ndef other():\n    return value()\n"
    )
    try:
        found = load_pipelines(tmp_path)
        assert list(found) == ["a_flow", "b_flow"]
        assert found["b_flow"].graph().to_text() == "pipeline b_flow (1 steps)\n  value [value]\n"
    finally:
        sys.modules.pop("pipelines", None)
        sys.modules.pop("helpers_for_flows", None)
    (tmp_path / "pipelines.py").write_text("raise RuntimeError('broken on import')\n")
    with pytest.raises(InvalidValueError, match="broken on import"):
        load_pipelines(tmp_path)
    other = tmp_path / "nothing_here"
    other.mkdir()
    assert load_pipelines(other) == {}

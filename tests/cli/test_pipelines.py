"""``mloop run`` and ``mloop pipelines list/show`` on a project's pipelines.py."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from mloop.store import SqlStore

from .helpers import Invoke

PIPELINES = textwrap.dedent(
    '''
    from pathlib import Path

    from mloop.pipelines import pipeline, step


    @step
    def numbers(n: int) -> list[int]:
        print(f"making {n} numbers")
        return list(range(n))


    @step
    def total(values: list[int], scale: float) -> float:
        if scale < 0:
            raise ValueError("scale must not be negative")
        return sum(values) * scale


    @step
    def label(name: str, value: float) -> str:
        return f"{name}={value}"


    @pipeline(schedule="0 3 * * *")
    def report(n: int = 4, scale: float = 1.0, name: str = "total"):
        """Add up some numbers."""
        return label(name, total(numbers(n), scale))
    '''
)


@pytest.fixture
def with_pipelines(project: Path) -> Path:
    (project / "pipelines.py").write_text(PIPELINES)
    return project


def runs_in(project: Path) -> SqlStore:
    return SqlStore(f"sqlite:///{project / '.mloop' / 'mloop.db'}")


def test_run_shows_each_step_and_caches_the_second_time(cli: Invoke, with_pipelines: Path) -> None:
    first = cli("run", "report", "--param", "n=5", "-P", "name=007", "--executor", "inprocess")
    assert first.exit_code == 0, first.output
    assert re.search(r"numbers\s+finished", first.stdout)
    assert re.search(r"label\s+finished", first.stdout)
    assert "report finished" in first.stdout
    assert "3 run, 0 from the cache" in first.stdout

    second = cli("run", "report", "-P", "n=5", "-P", "name=007", "-e", "inprocess")
    assert second.exit_code == 0, second.output
    assert re.search(r"total\s+cached", second.stdout)
    assert "0 run, 3 from the cache" in second.stdout

    store = runs_in(with_pipelines)
    try:
        pipeline_runs = [r for r in store.search_runs() if r.kind == "pipeline"]
        assert len(pipeline_runs) == 2
        # name is declared str: "007" stays a string; n is JSON: an int.
        assert pipeline_runs[0].params == {"n": "5", "scale": "1.0", "name": "007"}
    finally:
        store.close()

    forced = cli("run", "report", "-P", "n=5", "-P", "name=007", "-e", "inprocess", "--no-cache")
    assert "3 run, 0 from the cache" in forced.stdout


def test_a_failed_run_prints_the_traceback_and_resumes(cli: Invoke, with_pipelines: Path) -> None:
    failed = cli("run", "report", "-P", "scale=-1", "-e", "inprocess")
    assert failed.exit_code == 1
    assert re.search(r"total\s+failed", failed.stdout)
    assert re.search(r"label\s+skipped", failed.stdout)
    assert "step total failed:" in failed.stderr
    assert "Traceback" in failed.stderr
    assert "ValueError: scale must not be negative" in failed.stderr
    run_id = re.search(r"--resume (\S+)", failed.stderr)
    assert run_id is not None

    # Fix the step, then resume: numbers comes from the failed run.
    path = with_pipelines / "pipelines.py"
    path.write_text(path.read_text().replace("if scale < 0:", "if scale < -10:"))
    resumed = cli("run", "report", "--resume", run_id.group(1), "-e", "inprocess")
    assert resumed.exit_code == 0, resumed.output
    assert re.search(r"numbers\s+cached", resumed.stdout)
    assert re.search(r"total\s+finished", resumed.stdout)


def test_list_and_show(cli: Invoke, with_pipelines: Path) -> None:
    listed = cli("pipelines", "list")
    assert listed.exit_code == 0, listed.output
    assert re.search(
        r"report\s+0 3 \* \* \*\s+n=4, scale=1.0, name='total'\s+Add up", listed.stdout
    )

    text = cli("pipelines", "show", "report")
    assert text.stdout == (
        "pipeline report (3 steps)\n  numbers [numbers]\n  total [total]  <- numbers\n"
        "  label [label]  <- total\n"
    )
    mermaid = cli("pipelines", "show", "report", "--format", "mermaid")
    assert mermaid.stdout.startswith("flowchart TD\n")
    assert 'n0 -->|"output → values"| n1' in mermaid.stdout
    dot = cli("pipelines", "show", "report", "-f", "dot")
    assert dot.stdout.startswith('digraph "report" {')
    assert '"numbers" -> "total" [label="output → values"];' in dot.stdout

    bad = cli("pipelines", "show", "report", "-f", "png")
    assert bad.exit_code == 1
    assert "--format must be one of text, mermaid, dot" in bad.stderr


def test_unknown_pipelines_and_bad_params_are_clear(cli: Invoke, with_pipelines: Path) -> None:
    missing = cli("run", "nightly")
    assert missing.exit_code == 1
    assert "no pipeline named 'nightly'" in missing.stderr
    assert "report" in missing.stderr
    bad = cli("run", "report", "-P", "colour")
    assert bad.exit_code == 1
    assert "is not NAME=VALUE" in bad.stderr
    unknown = cli("run", "report", "-P", "colour=red", "-e", "inprocess")
    assert unknown.exit_code == 1
    assert "its parameters are: n=4, scale=1.0, name='total'" in unknown.stderr
    no_module = cli("run", "nowhere.flows:report")
    assert no_module.exit_code == 1
    assert "cannot import module 'nowhere.flows'" in no_module.stderr


def test_a_pipeline_by_module_and_function(cli: Invoke, project: Path) -> None:
    (project / "flows_here.py").write_text(PIPELINES)
    result = cli("run", "flows_here:report", "-e", "inprocess")
    assert result.exit_code == 0, result.output
    assert "report finished" in result.stdout


def test_no_pipelines_file(cli: Invoke, project: Path) -> None:
    listed = cli("pipelines", "list")
    assert listed.exit_code == 0
    assert "no pipelines" in listed.stdout

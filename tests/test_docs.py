"""The docs cannot drift: every ```python block in docs/ runs, in a fresh project folder."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).parents[1] / "docs"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks() -> list[tuple[str, int, str]]:
    found = []
    for page in sorted(DOCS.glob("*.md")):
        for number, match in enumerate(BLOCK.finditer(page.read_text()), start=1):
            found.append((page.name, number, match.group(1)))
    return found


@pytest.mark.parametrize(
    ("page", "number", "code"), python_blocks(), ids=[f"{p}#{n}" for p, n, _ in python_blocks()]
)
def test_documented_example_runs(page: str, number: int, code: str, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(code)
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=Path.cwd(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{page} example {number} failed:\n{done.stderr}"


def test_there_are_examples() -> None:
    pages = {page for page, _, _ in python_blocks()}
    assert {
        "tracking.md",
        "store.md",
        "registry.md",
        "features.md",
        "pipelines.md",
        "schedules.md",
        "compute.md",
        "serving.md",
    } <= pages

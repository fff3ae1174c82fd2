"""docs/cli.md is generated from the commands and must match them."""

from __future__ import annotations

from pathlib import Path

import pytest

from mloop.cli._docs import render

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_docs_cli_md_is_up_to_date() -> None:
    current = DOCS.read_text(encoding="utf-8") if DOCS.exists() else ""
    assert current == render(), "docs/cli.md is out of date with the CLI: run `make docs`"


def test_rendering_ignores_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    narrow = render()
    monkeypatch.setenv("COLUMNS", "300")
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert render() == narrow
    assert "\x1b[" not in narrow


def test_every_command_is_documented() -> None:
    text = render()
    for command in (
        "mloop demo",
        "mloop runs list",
        "mloop runs show",
        "mloop runs delete",
        "mloop runs restore",
        "mloop experiments list",
        "mloop gc",
        "mloop version",
    ):
        assert f"`{command}`" in text

"""The root command: help, version, and the error policy every command runs under."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from mloop import __version__
from mloop.cli._errors import MloopGroup, one_line
from mloop.errors import NotFoundError

from .helpers import Invoke


def test_help_lists_every_command_in_order(cli: Invoke) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    listed = re.findall(r"^│ (\w+) ", result.stdout, flags=re.MULTILINE)
    assert listed == [
        "demo",
        "runs",
        "experiments",
        "apply",
        "materialize",
        "features",
        "run",
        "pipelines",
        "scheduler",
        "models",
        "serve",
        "predict",
        "deploy",
        "webhooks",
        "events",
        "gc",
        "version",
    ]
    assert cli("-h").stdout == result.stdout


def test_no_arguments_shows_help(cli: Invoke) -> None:
    result = cli()
    assert "Usage: mloop" in result.output
    assert result.exit_code in (0, 2)  # Typer's no_args_is_help exit code


def test_version_option(cli: Invoke) -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout == f"mloop {__version__}\n"


def test_version_command_shows_resolved_uris(cli: Invoke, project: Path) -> None:
    result = cli("version", env={"MLOOP_TRACKING_URI": f"sqlite:///{project}/meta.db"})
    assert result.exit_code == 0, result.output
    assert __version__ in result.stdout
    assert f"sqlite:///{project}/meta.db" in result.stdout
    assert str(project / ".mloop" / "artifacts") in result.stdout
    assert "MLOOP_TRACKING_URI" in result.stdout
    assert not (project / ".mloop").exists()  # reporting opens no store


def test_bad_settings_are_one_line(cli: Invoke) -> None:
    result = cli("runs", "list", env={"MLOOP_FLUSH_INTERVAL": "-1"})
    assert result.exit_code == 1
    assert result.stderr.startswith("error: invalid settings: flush_interval")
    assert result.stderr.count("\n") == 1


# -- the error policy, on a small app of its own -------------------------------------------

failing = typer.Typer(cls=MloopGroup)


@failing.callback()
def _root() -> None:
    """An app whose commands fail in each way a command can."""


@failing.command()
def expected() -> None:
    raise NotFoundError("no run 'x'; see runs with: mloop runs list\n[red]not markup[/red]")


@failing.command()
def unexpected() -> None:
    raise ZeroDivisionError("division by zero")


@failing.command()
def interrupted() -> None:
    raise KeyboardInterrupt


@failing.command()
def usage(count: int) -> None:
    """Takes an int, to show usage errors keep Typer's exit code 2."""


@pytest.fixture
def runner(project: Path) -> CliRunner:
    return CliRunner()


def test_mloop_error_is_one_red_line(runner: CliRunner) -> None:
    result = runner.invoke(failing, ["expected"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "error: no run 'x'; see runs with: mloop runs list [red]not markup[/red]\n"
    )


def test_unexpected_error_names_its_type_and_points_at_debug(runner: CliRunner) -> None:
    result = runner.invoke(failing, ["unexpected"])
    assert result.exit_code == 1
    assert result.stderr == (
        "error: ZeroDivisionError: division by zero (run with --debug for the traceback)\n"
    )


@pytest.mark.parametrize("command", ["expected", "unexpected"])
def test_debug_lets_the_exception_through(runner: CliRunner, command: str) -> None:
    result = runner.invoke(failing, [command], env={"MLOOP_DEBUG": "1"})
    assert result.exit_code == 1
    assert isinstance(result.exception, NotFoundError | ZeroDivisionError)
    assert "error:" not in result.stderr


def test_keyboard_interrupt_exits_130_quietly(runner: CliRunner) -> None:
    result = runner.invoke(failing, ["interrupted"])
    assert result.exit_code == 130
    assert result.output == ""


def test_usage_errors_keep_exit_code_2(runner: CliRunner) -> None:
    result = runner.invoke(failing, ["usage", "many"])
    assert result.exit_code == 2
    assert "Invalid value" in result.stderr


def test_one_line_bounds_length_and_lines() -> None:
    assert one_line("a\n\n  b  \nc") == "a b c"
    long = one_line("x" * 100_000)
    assert len(long) == 1000
    assert long.endswith("…")

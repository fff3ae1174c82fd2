"""``mloop version``: which mloop and Python this is, and where it records."""

from __future__ import annotations

import os
import platform
import sys

from rich.table import Table

from mloop import __version__
from mloop.cli._console import stdout
from mloop.config import PROJECT_FILE, find_project_dir, load_settings


def version() -> None:
    """Show versions, and where runs are recorded.

    The mloop and Python versions, the project folder and its mloop.yaml (if any), the
    MLOOP_* variables set, and the tracking and artifact stores they resolve to.
    """
    settings = load_settings()
    project = find_project_dir()
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    grid.add_row("mloop", __version__)
    grid.add_row("python", f"{platform.python_version()} ({sys.executable})")
    grid.add_row("platform", platform.platform())
    grid.add_row("project", str(settings.home))
    grid.add_row(PROJECT_FILE, str(project / PROJECT_FILE) if project else "none (defaults apply)")
    overrides = sorted(name for name in os.environ if name.startswith("MLOOP_"))
    grid.add_row("environment", ", ".join(overrides) if overrides else "no MLOOP_* variables set")
    grid.add_row("tracking uri", settings.resolved_tracking_uri())
    grid.add_row("artifact uri", settings.resolved_artifact_uri())
    stdout().print(grid)

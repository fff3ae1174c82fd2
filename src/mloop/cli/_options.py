"""Options that several commands share."""

from __future__ import annotations

from typing import Any

import typer

__all__ = ["project_option"]


def project_option(holding: str) -> Any:
    """``--project/-p DIR``: the project folder holding ``holding`` (features.py, ...)."""
    return typer.Option(
        "--project",
        "-p",
        metavar="DIR",
        help=f"Project folder holding {holding} (default: this project).",
    )

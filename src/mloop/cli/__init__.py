"""The ``mloop`` command: Typer commands that parse, call the domain packages and render.

    $ mloop demo
    $ mloop runs list --experiment demo --order-by 'metrics.test_auc DESC'

:func:`main` is the console-script entry point; :data:`app` is the Typer application (tests run
it in-process with ``typer.testing.CliRunner``). ``docs/cli.md`` is generated from it.
"""

from __future__ import annotations

from mloop.cli._app import app, main

__all__ = ["app", "main"]

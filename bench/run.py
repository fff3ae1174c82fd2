"""Run mloop's benchmarks side by side with its peers and record them in bench/RESULTS.md.

    .venv/bin/python bench/run.py [--only tracking] [--quick] [--results PATH]

Run it from the repository root with mloop's venv (what `make bench` does). Each workload is a
module bench/<name>.py with `run(ctx) -> Section`; to add one, write the module and name it in
WORKLOADS. Peer venvs (.venv-bench/<peer>/) are built on first use from bench/peers/<peer>.txt.
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from harness import BENCH, REPO, Context, WorkerError
from report import print_section, section_markdown, update_results

WORKLOADS = ("tracking", "registry", "features", "serving", "pipelines")
QUICK_RESULTS = Path(tempfile.gettempdir()) / "mloop-bench" / "RESULTS.quick.md"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only", action="append", choices=WORKLOADS, help="run only this workload (repeatable)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one repetition of smaller sizes: a smoke test, not figures to quote",
    )
    parser.add_argument(
        "--results",
        type=Path,
        help=f"file to update (default bench/RESULTS.md; with --quick, {QUICK_RESULTS})",
    )
    return parser.parse_args(argv)


def shown_command(argv: list[str]) -> str:
    python = Path(sys.executable)
    if python.is_relative_to(REPO):
        python = python.relative_to(REPO)
    return shlex.join([str(python), "bench/run.py", *argv])


def shown_path(path: Path) -> str:
    path, here = path.resolve(), Path.cwd()
    return str(path.relative_to(here) if path.is_relative_to(here) else path)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    results = args.results or (QUICK_RESULTS if args.quick else BENCH / "RESULTS.md")
    console = Console(width=None if sys.stdout.isatty() else 150, log_path=False)
    ctx = Context(quick=args.quick, console=console)
    failed = []
    try:
        for name in args.only or WORKLOADS:
            try:
                section = importlib.import_module(name).run(ctx)
            except (WorkerError, RuntimeError, OSError) as exc:
                console.print(f"{name} failed: {exc}", style="bold red", markup=False)
                failed.append(name)
                continue
            print_section(console, section)
            if section.errors:
                failed.append(name)
            update_results(results, name, section_markdown(ctx, section, shown_command(argv)))
            console.print(f"Updated the {name} section of {shown_path(results)}")
    finally:
        ctx.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

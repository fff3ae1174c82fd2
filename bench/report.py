"""Showing a workload's Section: a Rich table on the terminal and its section of RESULTS.md."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import re
from pathlib import Path

from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from harness import PEERS, Context, Section

HEADER = """\
# mloop benchmarks

Written by `bench/run.py` (`make bench`). Each section is rewritten when its workload runs
again; the others are kept. Absolute figures depend on the machine: compare within a section.
"""

VERDICT_STYLES = {"PASS": "bold green", "MISS": "bold red"}


def rate(per_second: float) -> str:
    return f"{per_second:,.0f}/s"


def milliseconds(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def percent(fraction: float) -> str:
    return f"{fraction:.1%}" if fraction >= 0.01 else f"{fraction:.3%}"


def ratio(value: float) -> str:
    return f"{value:,.0f}×" if value >= 100 else f"{value:.2f}×"


def machine_lines(ctx: Context, section: Section) -> list[str]:
    """Date, hardware and versions, as the bullet lines of a RESULTS.md section."""
    cpu_model = _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown"
    mem_kib = (_proc_field("/proc/meminfo", "MemTotal").split() or ["0"])[0]  # "123 kB"
    versions = [f"mloop {mloop_version()}"] + [
        f"{package} {version}"
        for peer in section.peers
        for package, version in ctx.peer_versions.get(peer, {}).items()
    ]
    now = dt.datetime.now(dt.UTC).strftime("%a %b %d %H:%M:%S UTC %Y")
    return [
        f"Date (`date -u`): {now}",
        f"Machine: {len(os.sched_getaffinity(0))} CPUs (`nproc`), {cpu_model}, "
        f"{int(mem_kib) / 2**20:.1f} GiB RAM; 1-minute load average {ctx.load_at_start:.2f} "
        f"at the start, {os.getloadavg()[0]:.2f} at the end",
        f"Python {platform.python_version()}; {', '.join(versions)}",
    ]


def mloop_version() -> str:
    try:
        return importlib.metadata.version("mloop")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


def _proc_field(path: str, name: str) -> str:
    try:
        text = Path(path).read_text()
    except OSError:
        return ""
    match = re.search(rf"^{re.escape(name)}\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else ""


def print_section(console: Console, section: Section) -> None:
    console.rule(section.title)
    for table in section.tables:
        rich_table = RichTable(title=table.title, title_justify="left")
        for index, column in enumerate(table.columns):
            rich_table.add_column(column, justify="left" if index == 0 else "right")
        for row in table.rows:
            rich_table.add_row(*(Text(cell, style=_verdict_style(cell)) for cell in row))
        console.print(rich_table)
    for note in section.notes:
        console.print(f"• {note}", style="dim", markup=False)
    for error in section.errors:
        console.print(f"FAILED {error}", style="bold red", markup=False)


def _verdict_style(cell: str) -> str:
    words = cell.split(maxsplit=1)
    return VERDICT_STYLES.get(words[0], "") if words else ""


def section_markdown(ctx: Context, section: Section, command: str) -> str:
    peer_labels = ", ".join(PEERS[name].label for name in section.peers)
    lines = [f"## {section.title}", ""]
    lines += [f"- {line}" for line in machine_lines(ctx, section)]
    lines += [f"- Command: `{command}`", f"- Peers: {peer_labels or 'none'}", ""]
    for table in section.tables:
        lines += [f"**{table.title}**", "", _markdown_row(table.columns)]
        lines.append(_markdown_row(["---"] + ["--:"] * (len(table.columns) - 1)))
        lines += [_markdown_row(row) for row in table.rows]
        lines.append("")
    if section.notes:
        lines += ["Notes:", ""] + [f"- {note}" for note in section.notes] + [""]
    for error in section.errors:
        # The last line says what went wrong; the terminal showed the whole traceback.
        lines += [f"**Failed:** {error.splitlines()[0]} `{error.splitlines()[-1]}`", ""]
    return "\n".join(lines)


def _markdown_row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", r"\|") for cell in cells) + " |"


def update_results(path: Path, workload: str, markdown: str) -> None:
    """Replace the workload's section of RESULTS.md (or append it), keeping every other one."""
    start, end = f"<!-- bench:{workload} -->", f"<!-- /bench:{workload} -->"
    block = f"{start}\n{markdown.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip() + "\n")

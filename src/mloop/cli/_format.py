"""How values read in a terminal: sizes, durations, times, numbers and run statuses."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from rich.text import Text

STATUS_STYLES = {
    "running": "bold yellow",
    "finished": "green",
    "failed": "bold red",
    "killed": "magenta",
}


def human_bytes(size: int) -> str:
    """``1536`` → ``'1.5 KiB'``; whole bytes below one KiB."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        value /= 1024
        if value < 1024 or unit == "PiB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def human_duration(delta: timedelta) -> str:
    """``timedelta(seconds=63)`` → ``'1m 03s'``; ``'4.2s'`` under a minute, ``'12ms'`` under 1s."""
    seconds = max(delta.total_seconds(), 0.0)
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s"


def local_time(when: datetime | None) -> str:
    """An aware datetime in the local time zone, to the second, with the zone; '-' for None."""
    if when is None:
        return "-"
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z").rstrip()


def ago(when: datetime, now: datetime | None = None) -> str:
    """How long ago, compactly: ``'45s ago'``, ``'12m ago'``, ``'3h ago'``, ``'6d ago'``;
    older times as a local date (``'11-02'``, or ``'2025-11-02'`` if not this year)."""
    now = now or datetime.now(UTC)
    seconds = max(int((now - when).total_seconds()), 0)
    for size, unit in ((60, "s"), (3600, "m"), (86400, "h"), (7 * 86400, "d")):
        if seconds < size:
            step = {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
            return f"{seconds // step}{unit} ago"
    local = when.astimezone()
    return local.strftime("%m-%d" if local.year == now.astimezone().year else "%Y-%m-%d")


def number(value: float, digits: int = 4) -> str:
    """A metric value, compact: ``digits`` significant digits, plain notation where it reads.

    ``0.987654`` → ``'0.9877'``, ``3.0`` → ``'3'``, ``123456.7`` → ``'123,457'``,
    ``1.5e-07`` → ``'1.5e-07'``.
    """
    if not math.isfinite(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}" if abs(value) >= 1e4 else str(int(value))
    size = abs(value)
    if 1e4 <= size < 1e15:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def status(name: str, *, deleted: bool = False) -> Text:
    """A run status in its colour, marked when the run is soft-deleted."""
    text = Text(name, style=STATUS_STYLES.get(name, ""))
    if deleted:
        text.append(" (deleted)", style="dim")
    return text


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending in an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"

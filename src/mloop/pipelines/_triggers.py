"""Event triggers: run a pipeline when new data lands, an alert fires, or a model alias moves.

Each trigger reads from a position (a cursor) that the scheduler keeps in the metadata store:
the last event id it handled, or a fingerprint of a source's file listing. A trigger's first
check only records where things stand; it fires on what happens after that.

>>> on_new_data("data/events/")               # doctest: +SKIP
>>> on_alert("drift_*")                       # doctest: +SKIP
>>> on_alias_changed("churn@production")      # doctest: +SKIP
"""

from __future__ import annotations

import fnmatch
import hashlib
import itertools
import os
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mloop.errors import InvalidValueError, NotFoundError
from mloop.store import Event, Store, to_ms

if TYPE_CHECKING:  # at run time a FileSource is known by its spec: importing features is slow
    from mloop.features import FileSource

__all__ = [
    "AlertTrigger",
    "AliasTrigger",
    "NewDataTrigger",
    "Trigger",
    "TriggerCheck",
    "TriggerContext",
    "on_alert",
    "on_alias_changed",
    "on_new_data",
]

EVENTS_PER_CHECK = 1000
MAX_FILES = 1_000_000  # a listing bigger than this is not a data source but a mistake
_GLOB = re.compile(r"[*?\[]")
_VIEW_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_NAME_PATTERN = re.compile(r"[A-Za-z0-9_.\-*?@/]{1,256}")


def _shown(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


@dataclass(frozen=True)
class TriggerContext:
    """What a trigger may look at during one check."""

    store: Store
    project_dir: Path
    # Events newer than this are left for the next check: an event whose transaction commits
    # a moment after a newer one would otherwise be passed over.
    settled_before: datetime


@dataclass(frozen=True)
class TriggerCheck:
    """Where a trigger's cursor goes, and whether getting there fires the pipeline."""

    position: str
    fire: bool
    tags: dict[str, str] = field(default_factory=dict)


class Trigger(Protocol):
    """Something a scheduler checks each tick; ``key`` names its cursor."""

    @property
    def key(self) -> str: ...

    def describe(self) -> str: ...

    def check(self, context: TriggerContext, cursor: str | None) -> TriggerCheck: ...


# -- new data -----------------------------------------------------------------------------------


def _listing_fingerprint(root: Path) -> tuple[str, int]:
    """sha256 of the sorted (relative name, size, mtime) of every visible file, and their count.

    Names starting with ``.`` are left out: writers put half-written files there.
    """
    entries: list[tuple[str, int, int]] = []
    if _GLOB.search(str(root)):
        anchor = Path(root.anchor)
        matches = anchor.glob(str(root.relative_to(anchor)))
        paths = [p for p in matches if not p.name.startswith(".")]
        base = anchor
    elif root.is_dir():
        paths = []
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            paths.extend(Path(folder, f) for f in files if not f.startswith("."))
            if len(paths) > MAX_FILES:
                break
        base = root
    else:
        paths = [root] if root.exists() else []
        base = root.parent
    for path in paths:
        if len(entries) >= MAX_FILES:
            raise InvalidValueError(
                f"{root} holds more than {MAX_FILES:,} files; point on_new_data at the folder "
                "or glob of one data set"
            )
        try:
            info = path.stat()
        except OSError:  # removed while listing: it is not new data
            continue
        if path.is_file():
            entries.append((path.relative_to(base).as_posix(), info.st_size, info.st_mtime_ns))
    digest = hashlib.sha256()
    for name, size, mtime in sorted(entries):
        digest.update(f"{name}\x00{size}\x00{mtime}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest(), len(entries)


@dataclass(frozen=True)
class NewDataTrigger:
    """Fires when the files of a source change: added, rewritten, renamed."""

    source: str  # a path or glob (relative to the project folder), or a feature view's name

    @property
    def key(self) -> str:
        return f"on_new_data:{self.source}"

    def describe(self) -> str:
        return f"new data in {self.source}"

    def _path(self, context: TriggerContext) -> Path:
        path = Path(self.source)
        if not path.is_absolute():
            path = context.project_dir / path
        if _VIEW_NAME.fullmatch(self.source) and not path.exists():
            return self._view_path(context) or path
        return path

    def _view_path(self, context: TriggerContext) -> Path | None:
        """The files of the applied feature view named ``source``; None if there is none (then
        ``source`` is a folder that does not exist yet)."""
        try:
            definition = context.store.features.get_definition("feature_view", self.source)
        except NotFoundError:
            return None
        source: dict[str, Any] = definition.spec.get("source", {})
        if source.get("type") != "file":
            raise InvalidValueError(
                f"on_new_data({self.source!r}): the feature view reads from a "
                f"{source.get('type', 'unknown')} source; on_new_data watches files (FileSource)"
            )
        path = Path(str(source["path"]))
        return path if path.is_absolute() else context.project_dir / path

    def check(self, context: TriggerContext, cursor: str | None) -> TriggerCheck:
        fingerprint, count = _listing_fingerprint(self._path(context))
        # A source that became empty has no new data to train on.
        fire = cursor is not None and fingerprint != cursor and count > 0
        return TriggerCheck(fingerprint, fire, {"mloop.trigger.files": str(count)})


def on_new_data(source: str | os.PathLike[str] | FileSource) -> NewDataTrigger:
    """Run the pipeline when files in ``source`` are added or changed.

    ``source`` is a file, a folder (searched recursively), a glob (``data/*.parquet``), a
    :class:`~mloop.features.FileSource`, or the name of an applied feature view with a file
    source. Relative paths are relative to the project folder.
    """
    spec = getattr(source, "spec", None)
    if callable(spec) and not isinstance(source, str | os.PathLike):
        described = spec()
        if not isinstance(described, dict) or described.get("type") != "file":
            raise InvalidValueError(
                f"on_new_data watches files; {type(source).__name__} is not a FileSource"
            )
        source = described["path"]
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str) or not source.strip() or "\x00" in source or len(source) > 200:
        raise InvalidValueError(
            "on_new_data needs a path, a FileSource or a feature view name (at most 200 "
            f"characters), not {_shown(source)}"
        )
    return NewDataTrigger(source)


# -- events -------------------------------------------------------------------------------------


def _id_floor(moment: datetime) -> str:
    """The smallest UUIDv7 of ``moment``'s millisecond: every event id after it is newer."""
    return str(uuid.UUID(int=max(0, to_ms(moment)) << 80))


def _event_check(
    context: TriggerContext, cursor: str | None, kind: str, matches: Any
) -> TriggerCheck:
    if cursor is None:
        return TriggerCheck(_id_floor(context.settled_before), False)
    events: list[Event] = context.store.events.list_events(
        kind=kind, after_id=cursor, limit=EVENTS_PER_CHECK
    )
    # Up to the first event too fresh to trust: the cursor must not pass over anything.
    settled = list(itertools.takewhile(lambda e: e.created < context.settled_before, events))
    if not settled:
        return TriggerCheck(cursor, False)
    hits = [e for e in settled if matches(e)]
    if not hits:
        return TriggerCheck(settled[-1].id, False)
    tags = {"mloop.trigger.event": hits[-1].id, "mloop.trigger.subject": hits[-1].subject}
    return TriggerCheck(settled[-1].id, True, tags)


def _pattern(value: str, what: str, example: str) -> str:
    if not isinstance(value, str) or not _NAME_PATTERN.fullmatch(value):
        raise InvalidValueError(
            f"{what} {_shown(value)} is not a name or glob; use letters, digits and _ . - @ / "
            f"with * and ? as wildcards (at most 256 characters), e.g. {example}"
        )
    return value


@dataclass(frozen=True)
class AlertTrigger:
    """Fires on ``alert.fired`` events whose rule (and subject) match the globs."""

    rule: str = "*"
    subject: str = "*"

    @property
    def key(self) -> str:
        return f"on_alert:{self.rule}:{self.subject}"

    def describe(self) -> str:
        where = "" if self.subject == "*" else f" on {self.subject}"
        return f"alert {self.rule} fired{where}"

    def _matches(self, event: Event) -> bool:
        rule = event.payload.get("rule")
        return (
            isinstance(rule, str)
            and fnmatch.fnmatchcase(rule, self.rule)
            and fnmatch.fnmatchcase(event.subject, self.subject)
        )

    def check(self, context: TriggerContext, cursor: str | None) -> TriggerCheck:
        return _event_check(context, cursor, "alert.fired", self._matches)


def on_alert(rule: str = "*", *, subject: str = "*") -> AlertTrigger:
    """Run the pipeline when an alert whose rule name matches ``rule`` (a glob) fires.

    Alerts are ``alert.fired`` events with the rule's name in ``payload["rule"]`` and the
    monitored thing (``churn@production``) as subject, which ``subject`` can narrow.
    """
    return AlertTrigger(
        _pattern(rule, "alert rule", "'drift_*'"), _pattern(subject, "subject", "'churn@*'")
    )


@dataclass(frozen=True)
class AliasTrigger:
    """Fires on ``model_alias.changed`` events for ``model@alias`` (globs allowed)."""

    target: str

    @property
    def key(self) -> str:
        return f"on_alias_changed:{self.target}"

    def describe(self) -> str:
        return f"alias {self.target} moved"

    def check(self, context: TriggerContext, cursor: str | None) -> TriggerCheck:
        return _event_check(
            context,
            cursor,
            "model_alias.changed",
            lambda event: fnmatch.fnmatchcase(event.subject, self.target),
        )


def on_alias_changed(target: str) -> AliasTrigger:
    """Run the pipeline when the alias ``"model@alias"`` is pointed at another version."""
    _pattern(target, "alias", "'churn@production'")
    name, at, alias = target.partition("@")
    if not at or not name or not alias or "@" in alias:
        raise InvalidValueError(
            f"on_alias_changed needs 'model@alias', like 'churn@production', not {_shown(target)}"
        )
    return AliasTrigger(target)

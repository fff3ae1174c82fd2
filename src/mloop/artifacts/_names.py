"""Artifact names given by users, checked so that they can never reach outside their folder.

An artifact name such as ``"model/weights.bin"`` is logged with a run and later turned into a
file path when the artifact is downloaded. Names that climb out of the destination folder were
behind several MLflow path-traversal CVEs (CVE-2023-1177, CVE-2023-6909, CVE-2024-1560, ...), so
every name goes through :func:`safe_relpath` and every download path through :func:`safe_join`.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

from mloop.errors import UnsafePathError

__all__ = ["safe_join", "safe_relpath"]

MAX_NAME_CHARS = 1000
MAX_SEGMENT_BYTES = 255

_ALLOWED = (
    "use a relative path with '/' between folders, like 'model/weights.bin': "
    "no '..', no leading '/' or drive, no backslashes, no control characters, "
    "no %XX escapes, no leading '~'"
)
# Windows reads any character before a colon as a drive ("C:x", and "0:x" too).
_DRIVE = re.compile(r"[^/]:")
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
# Characters Unicode calls control (Cc), format (Cf: invisible, bidi overrides) or surrogate.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})
_ASCII_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_WINDOWS_DEVICES = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{port}{n}" for port in ("COM", "LPT") for n in (*"123456789", "¹", "²", "³")}
)


def safe_relpath(name: object) -> str:
    """Check a user-given artifact name and return it in normal form (POSIX, no ``.`` parts).

    ``"./model//weights.bin"`` becomes ``"model/weights.bin"``: ``.`` segments, empty segments
    and a trailing ``/`` are dropped, and the text is put in Unicode NFC form (so ``é`` typed
    on macOS and on Linux is the same name). Anything that could point outside the folder the
    name is joined to raises :class:`~mloop.errors.UnsafePathError`: ``..`` segments, absolute
    paths (``/x``, ``C:\\x``, ``C:x``, ``\\\\server\\share``), backslashes, control and
    invisible characters, ``%XX`` escapes (``%2e%2e``, ``%252e``), a leading ``~``, segments
    ending in ``.`` or a space (Windows strips those), Windows device names (``CON``,
    ``nul.txt``), names over 1,000 characters and segments over 255 UTF-8 bytes. The same
    checks run on the name's NFKC form, so full-width look-alikes (``．．／``) fail too.

    >>> safe_relpath("./model//weights.bin")
    'model/weights.bin'
    """
    if not isinstance(name, str):
        raise UnsafePathError(f"artifact name must be a str, not {type(name).__name__}; {_ALLOWED}")
    normal = _check(name if name.isascii() else unicodedata.normalize("NFC", name), name)
    folded = name if name.isascii() else unicodedata.normalize("NFKC", name)
    if folded != name:
        _check(folded, name, note=f" (its Unicode NFKC form {_show(folded)})")
    return normal


def safe_join(root: str | os.PathLike[str], name: object) -> Path:
    """Join a user-given artifact name to ``root`` and return the resolved path inside it.

    The name is checked with :func:`safe_relpath`; then the joined path is resolved, following
    symlinks, and must still lie strictly inside ``root`` (resolved too). A symlink below
    ``root`` that leads elsewhere raises :class:`~mloop.errors.UnsafePathError`.

    >>> safe_join("/srv/downloads", "model/weights.bin")  # doctest: +SKIP
    PosixPath('/srv/downloads/model/weights.bin')
    """
    relative = safe_relpath(name)
    base = Path(root).resolve()
    try:
        target = (base / relative).resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise UnsafePathError(
            f"artifact name {_show(relative)} cannot be resolved below {str(base)!r}: {exc}"
        ) from exc
    if target == base or not target.is_relative_to(base):
        raise UnsafePathError(
            f"artifact name {_show(relative)} leads to {str(target)!r}, outside {str(base)!r} "
            "(through a symlink); remove the symlink or choose another folder"
        )
    return target


def _check(text: str, original: str, note: str = "") -> str:
    """Return the normal form of ``text`` or raise UnsafePathError about ``original``."""

    def bad(reason: str) -> UnsafePathError:
        return UnsafePathError(
            f"unsafe artifact name {_show(original)}{note}: {reason}; {_ALLOWED}"
        )

    if not text:
        raise bad("it is empty")
    if len(text) > MAX_NAME_CHARS:
        raise bad(f"it is {len(text)} characters long, more than {MAX_NAME_CHARS}")
    if (hidden := _hidden_char(text)) is not None:
        raise bad(f"it contains the control or invisible character {hidden!r}")
    if "\\" in text:
        raise bad("it contains a backslash")
    if escape := _PERCENT_ESCAPE.search(text):
        raise bad(f"it contains the URL escape {escape.group()!r}")
    if text.startswith("/"):
        raise bad("it is an absolute path")
    if _DRIVE.match(text):
        raise bad("it starts with a Windows drive such as 'C:'")
    segments = [segment for segment in text.split("/") if segment not in ("", ".")]
    if not segments:
        raise bad("it names no file, only the folder itself")
    if segments[0].startswith("~"):
        raise bad("it starts with '~', which shells expand to a home folder")
    for segment in segments:
        if segment == "..":
            raise bad("it contains a '..' segment")
        if segment.endswith((".", " ")):
            raise bad(f"its segment {_show(segment)} ends in a dot or space")
        if segment.split(".", 1)[0].rstrip(" ").upper() in _WINDOWS_DEVICES:
            raise bad(f"its segment {_show(segment)} is a Windows device name")
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise bad(f"a segment is longer than {MAX_SEGMENT_BYTES} bytes")
    return "/".join(segments)


def _hidden_char(text: str) -> str | None:
    """Return the first control, invisible or surrogate character in ``text``, if any."""
    if text.isascii():  # the common case, without a per-character lookup
        found = _ASCII_CONTROL.search(text)
        return found.group() if found else None
    return next((c for c in text if unicodedata.category(c) in _HIDDEN_CATEGORIES), None)


def _show(text: str) -> str:
    """Return ``repr(text)``, shortened to stay readable in an error message."""
    shown = repr(text)
    return shown if len(shown) <= 80 else shown[:77] + "..."

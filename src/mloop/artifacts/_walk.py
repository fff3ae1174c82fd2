"""Listing the files to log from a path given by the user: one file, or a whole folder."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

from mloop.artifacts._names import safe_relpath
from mloop.errors import InvalidInputError, NotFoundError, UnsafePathError

__all__ = ["walk_files"]


def walk_files(path: str | os.PathLike[str]) -> Iterator[tuple[str, Path]]:
    """Yield ``(name, file)`` for every file to log from ``path``, sorted by name.

    For a single file that is one pair: its base name and its absolute path. For a folder it
    is every regular file below it, named by its POSIX path relative to the folder
    (``"sub/data.csv"``); empty folders yield nothing. Every name passes :func:`safe_relpath`,
    so it can later be downloaded safely anywhere.

    Symlinks below the folder are followed only while they stay inside it: a symlink that
    resolves outside the folder raises :class:`~mloop.errors.UnsafePathError` naming it, so
    logging a folder can never pick up ``/etc/passwd`` or ``~/.ssh``. A symlink loop raises
    UnsafePathError too, a dangling symlink NotFoundError, and sockets, pipes and devices
    InvalidInputError. The yielded path is the real (resolved) file to read.

    >>> [name for name, _ in walk_files("outputs")]  # doctest: +SKIP
    ['metrics.json', 'model/weights.bin']
    """
    given = Path(path)
    if not given.exists():
        raise NotFoundError(f"nothing to log at {str(given)!r}: no such file or folder")
    if given.is_dir():
        root = given.resolve()
        yield from sorted(_walk(root, root, "", (root,)))
        return
    name = safe_relpath(given.name)
    real = given.resolve()
    _require_regular_file(real, name)
    yield name, real


def _walk(
    root: Path, folder: Path, prefix: str, ancestors: tuple[Path, ...]
) -> Iterator[tuple[str, Path]]:
    """Yield ``(name, real path)`` for the files in ``folder`` (resolved), named ``prefix/...``."""
    with os.scandir(folder) as entries:
        listed = list(entries)
    for entry in listed:
        name = safe_relpath(f"{prefix}/{entry.name}" if prefix else entry.name)
        real = _follow(root, Path(entry.path), name) if entry.is_symlink() else Path(entry.path)
        if real.is_dir():
            if real in ancestors:
                raise UnsafePathError(f"{name!r} in {str(root)!r} is a symlink loop")
            yield from _walk(root, real, name, (*ancestors, real))
        else:
            _require_regular_file(real, name)
            yield name, real


def _follow(root: Path, link: Path, name: str) -> Path:
    """Return where the symlink ``link`` leads, which must exist and be inside ``root``."""
    try:
        target = link.resolve(strict=True)
    except FileNotFoundError as exc:
        raise NotFoundError(
            f"{name!r} in {str(root)!r} is a symlink to {os.readlink(link)!r}, which does not exist"
        ) from exc
    except (OSError, RuntimeError) as exc:  # a loop of symlinks
        raise UnsafePathError(f"{name!r} in {str(root)!r} is a symlink loop: {exc}") from exc
    if not target.is_relative_to(root):
        raise UnsafePathError(
            f"{name!r} in {str(root)!r} is a symlink to {str(target)!r}, outside the folder "
            "being logged; copy the file in or log it separately"
        )
    return target


def _require_regular_file(path: Path, name: str) -> None:
    """Raise InvalidInputError unless ``path`` is a regular file (not a pipe, socket, device)."""
    if not stat.S_ISREG(path.stat().st_mode):
        raise InvalidInputError(
            f"{name!r} ({str(path)!r}) is not a regular file (a pipe, socket or device?); "
            "only regular files can be logged"
        )

"""Writing local files atomically: stream into a temp file, hash, fsync, then rename."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from mloop.errors import IntegrityError, InvalidInputError

__all__ = ["download", "fsync_folder", "publish", "write_temp"]

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def write_temp(chunks: Iterable[bytes], folder: Path) -> tuple[Path, str, int]:
    """Write ``chunks`` to a new temp file in ``folder``; return ``(temp, sha256, size)``.

    The temp file is fsynced before this returns. If anything goes wrong it is removed, so
    a failed write leaves nothing behind.
    """
    temp = folder / f".mloop-{os.urandom(16).hex()}.part"
    digest = hashlib.sha256()
    size = 0
    # 0o666 lets the umask decide, as for any file the user writes.
    fd = os.open(temp, _FLAGS, 0o666)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    return temp, digest.hexdigest(), size


def publish(temp: Path, dest: Path) -> None:
    """Rename ``temp`` to ``dest`` in one step and make the rename durable."""
    try:
        os.replace(temp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    fsync_folder(dest.parent)


def download(chunks: Iterable[bytes], dest: Path, digest: str) -> None:
    """Write ``chunks`` to ``dest`` atomically, but only if their sha256 is ``digest``."""
    if dest.is_dir():
        raise InvalidInputError(f"cannot write a blob to {str(dest)!r}: it is a folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    temp, actual, _ = write_temp(chunks, dest.parent)
    if actual != digest:
        temp.unlink()
        raise IntegrityError(
            f"blob {digest} read back with sha256 {actual}: the stored bytes are corrupt; "
            f"{str(dest)!r} was left untouched"
        )
    publish(temp, dest)


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries to disk (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open folders; its renames are journaled
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

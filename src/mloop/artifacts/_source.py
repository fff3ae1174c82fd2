"""Reading a file the user asked to store, with its problems told in mloop's terms."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from mloop.artifacts._digest import CHUNK_SIZE
from mloop.errors import ArtifactError, InvalidInputError, NotFoundError

__all__ = ["source_chunks"]

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


@contextmanager
def source_chunks(path: str | os.PathLike[str]) -> Iterator[Iterator[bytes]]:
    """Open the regular file at ``path`` and give its bytes as 1 MiB chunks.

    A missing file raises NotFoundError, a folder or a pipe InvalidInputError, and a read that
    fails part-way ArtifactError naming the file.
    """
    source = Path(path)
    try:
        # Non-blocking, so that a named pipe is refused instead of waiting for a writer.
        fd = os.open(source, _OPEN_FLAGS)
    except FileNotFoundError:
        raise NotFoundError(f"no file to store at {str(source)!r}") from None
    except OSError as exc:
        if source.is_dir():  # Windows cannot open folders at all
            raise _folder(source) from None
        raise ArtifactError(f"cannot read {str(source)!r}: {exc}") from exc
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise _folder(source)
        raise InvalidInputError(
            f"{str(source)!r} is not a regular file (a pipe, socket or device?); "
            "only regular files can be stored"
        )
    with os.fdopen(fd, "rb") as stream:
        yield _chunks(stream, source)


def _folder(source: Path) -> InvalidInputError:
    return InvalidInputError(
        f"{str(source)!r} is a folder; store its files one by one (walk_files lists them)"
    )


def _chunks(stream: BinaryIO, source: Path) -> Iterator[bytes]:
    while True:
        try:
            chunk = stream.read(CHUNK_SIZE)
        except OSError as exc:
            raise ArtifactError(f"reading {str(source)!r} failed part-way: {exc}") from exc
        if not chunk:
            return
        yield chunk

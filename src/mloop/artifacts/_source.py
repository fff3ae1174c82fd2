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


@contextmanager
def source_chunks(path: str | os.PathLike[str]) -> Iterator[Iterator[bytes]]:
    """Open the regular file at ``path`` and give its bytes as 1 MiB chunks.

    A missing file raises NotFoundError, a folder or a pipe InvalidInputError, and a read that
    fails part-way ArtifactError naming the file.
    """
    source = Path(path)
    if source.is_dir():
        raise InvalidInputError(
            f"{str(source)!r} is a folder; store its files one by one (walk_files lists them)"
        )
    try:
        stream = open(source, "rb")  # noqa: SIM115 - closed by the with below
    except FileNotFoundError:
        raise NotFoundError(f"no file to store at {str(source)!r}") from None
    except OSError as exc:
        raise ArtifactError(f"cannot read {str(source)!r}: {exc}") from exc
    with stream:
        if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
            raise InvalidInputError(
                f"{str(source)!r} is not a regular file (a pipe, socket or device?); "
                "only regular files can be stored"
            )
        yield _chunks(stream, source)


def _chunks(stream: BinaryIO, source: Path) -> Iterator[bytes]:
    while True:
        try:
            chunk = stream.read(CHUNK_SIZE)
        except OSError as exc:
            raise ArtifactError(f"reading {str(source)!r} failed part-way: {exc}") from exc
        if not chunk:
            return
        yield chunk
